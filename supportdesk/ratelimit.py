"""Fixed-window counters in Redis: failed logins, and tickets opened by the public.

A window starts with the first hit on a key and lasts `window` seconds; past its limit
within the window, every further attempt is a 429 with `Retry-After` until it ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import redis

from supportdesk.errors import RateLimited


def _digest(text: str) -> str:
    # Hashed: keys stay short and Redis holds no list of who tried what.
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()[:32]


# Count one hit on every key; a key's first hit starts its window. One round trip, atomic,
# so a counter can never be left without its expiry. Returns [count, ttl] per key.
_HIT = """
local out = {}
for _, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then redis.call('EXPIRE', key, ARGV[1]) end
    out[#out + 1] = count
    out[#out + 1] = redis.call('TTL', key)
end
return out
"""


class FixedWindows:
    """Counters whose window starts at their first hit (the script is loaded once)."""

    def __init__(self, redis_client: redis.Redis):
        self._hit = redis_client.register_script(_HIT)

    def hit(self, limits: Sequence[tuple[str, int]], window: int, message: str) -> None:
        """Count one attempt on every key, then raise RateLimited if any is past its limit.

        Counting comes first, so that parallel attempts cannot all pass a check made before
        any of them is counted.
        """
        replies = self._hit(keys=[key for key, _ in limits], args=[window])
        waits = [
            replies[2 * i + 1] for i, (_, limit) in enumerate(limits) if replies[2 * i] > limit
        ]
        if waits:
            raise RateLimited(max(max(waits), 1), message)


class LoginThrottle:
    """Failed logins per account and per client address, whether the email exists or not.
    An attempt is counted before its password is checked; a success gives it back."""

    def __init__(
        self, redis_client: redis.Redis, *, per_account: int, per_address: int, window_seconds: int
    ):
        self.redis = redis_client
        self.windows = FixedWindows(redis_client)
        self.per_account = per_account
        self.per_address = per_address
        self.window = window_seconds

    def attempt(self, email: str, address: str) -> None:
        self.windows.hit(
            [
                (self._account_key(email), self.per_account),
                (self._address_key(address), self.per_address),
            ],
            self.window,
            "Too many failed login attempts; please wait before trying again.",
        )

    def succeeded(self, email: str, address: str) -> None:
        """A successful login clears its account's count and gives back its attempt."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._account_key(email))
            pipe.decr(self._address_key(address))
            pipe.execute()

    @staticmethod
    def _account_key(email: str) -> str:
        return f"sd:login:account:{_digest(email)}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"sd:login:address:{address}"


class PublicTicketThrottle:
    """Tickets opened without a login, per client address and per requester email.

    The form is public and every ticket sends an acknowledgement: without a limit it could
    flood the help desk, or mail someone else's inbox through us.
    """

    WINDOW = 3600

    def __init__(self, redis_client: redis.Redis, *, per_address: int, per_requester: int):
        self.windows = FixedWindows(redis_client)
        self.per_address = per_address
        self.per_requester = per_requester

    def attempt(self, address: str, requester_email: str) -> None:
        self.windows.hit(
            [
                (f"sd:tickets:address:{address}", self.per_address),
                (f"sd:tickets:requester:{_digest(requester_email)}", self.per_requester),
            ],
            self.WINDOW,
            "Too many requests were sent from here; please wait and try again.",
        )


class AckThrottle:
    """Acknowledgements sent to one address, per hour: an autoresponder that slips past
    the loop checks (or a flood in someone's name) gets a few, not one per message."""

    WINDOW = 3600

    def __init__(self, redis_client: redis.Redis, *, per_address: int):
        self.windows = FixedWindows(redis_client)
        self.per_address = per_address

    def allows(self, address: str) -> bool:
        try:
            self.windows.hit(
                [(f"sd:acks:{_digest(address)}", self.per_address)], self.WINDOW, "acks"
            )
        except RateLimited:
            return False
        except redis.RedisError:
            return True  # unchecked: the loop checks still hold, and nothing is lost
        return True
