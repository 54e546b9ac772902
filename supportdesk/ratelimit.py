"""Fixed-window counters in Redis: failed logins, tickets opened by the public, and the
acknowledgements we send.

A window starts with the first counted hit on a key and lasts `window` seconds. An attempt
is checked before it is counted: one that is refused (429 with `Retry-After`) is not counted,
so a client that keeps trying after its limit does not push its own window, or anyone
else's, further out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

import redis

from supportdesk.errors import RateLimited


def _digest(text: str) -> str:
    # Hashed: keys stay short and Redis holds no list of who tried what.
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()[:32]


# KEYS: the counters; ARGV[1]: the window; ARGV[1 + i]: the limit of KEYS[i] (0: counted,
# never refusing). If any counter is at its limit, nothing is counted and the reply is the
# longest wait; else every counter is counted (a first hit starts its window) and the reply
# is 0. One round trip, atomic: parallel attempts cannot all pass one check, and a counter
# is never left without its expiry.
_CHECK_THEN_COUNT = """
local wait = 0
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[i + 1])
    if limit > 0 and tonumber(redis.call('GET', key) or '0') >= limit then
        local ttl = redis.call('TTL', key)
        if ttl < 0 then
            redis.call('EXPIRE', key, ARGV[1])
            ttl = tonumber(ARGV[1])
        end
        wait = math.max(wait, ttl, 1)
    end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
    if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 0
"""

# Give back one counted attempt on each key that still exists (a key whose window ended
# meanwhile stays gone, rather than coming back as -1 without an expiry).
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
return 0
"""


class FixedWindows:
    """Counters whose window starts at their first counted hit (scripts are loaded once)."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client
        self._check_then_count = redis_client.register_script(_CHECK_THEN_COUNT)
        self._give_back = redis_client.register_script(_GIVE_BACK)

    def hit(self, limits: Sequence[tuple[str, int]], window: int, message: str) -> None:
        """Raise RateLimited if any key is at its limit; otherwise count one on every key."""
        wait = self._check_then_count(
            keys=[key for key, _ in limits], args=[window, *(limit for _, limit in limits)]
        )
        if wait:
            raise RateLimited(int(wait), message)

    def give_back(self, keys: Sequence[str]) -> None:
        self._give_back(keys=list(keys))


class LoginThrottle:
    """Failed logins, whether the email exists or not. An attempt is counted before its
    password is checked (parallel guesses cannot all pass), and a success gives it back.

    - One account from one client address: `per_account` attempts a window. Only that
      client is refused: an attacker elsewhere cannot lock the real user out (OWASP ASVS
      V2.2.1: anti-automation that does not lock out legitimate users).
    - One client address across accounts: `per_address`.
    - One account from everywhere: past `slowdown_after` a window, each client address gets
      a single attempt a window for it. That slows guessing from many addresses without
      locking anyone out: the real user's own address has not failed, so their try counts.
    """

    SLOWED_PER_ACCOUNT = 1

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        per_account: int,
        per_address: int,
        slowdown_after: int,
        window_seconds: int,
    ):
        self.redis = redis_client
        self.windows = FixedWindows(redis_client)
        self.per_account = per_account
        self.per_address = per_address
        self.slowdown_after = slowdown_after
        self.window = window_seconds

    def attempt(self, email: str, address: str) -> None:
        account = self._account_key(email)
        slowed = int(self.redis.get(account) or 0) >= self.slowdown_after
        self.windows.hit(
            [
                (self._pair_key(email, address), self._pair_limit(slowed)),
                (self._address_key(address), self.per_address),
                (account, 0),  # counted, never refusing by itself
            ],
            self.window,
            "Too many failed login attempts; please wait before trying again.",
        )

    def _pair_limit(self, slowed: bool) -> int:
        return min(self.per_account, self.SLOWED_PER_ACCOUNT) if slowed else self.per_account

    def succeeded(self, email: str, address: str) -> None:
        """A success clears this client's count for the account and gives back its attempt
        on the others (the address keeps its earlier failures: logging in to an account of
        one's own must not reset the count of guesses against other accounts)."""
        self.redis.delete(self._pair_key(email, address))
        self.windows.give_back([self._address_key(address), self._account_key(email)])

    @staticmethod
    def _pair_key(email: str, address: str) -> str:
        return f"sd:login:pair:{_digest(email + chr(0) + address)}"

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
    """Acknowledgements sent to one address a day: an autoresponder that slips past the
    loop checks, or a flood of tickets opened in someone's name on the public form, gets a
    few, not one per ticket."""

    WINDOW = 86400

    def __init__(self, redis_client: redis.Redis, *, per_address: int):
        self.windows = FixedWindows(redis_client)
        self.per_address = per_address

    def allows(self, address: str) -> bool:
        try:
            self.windows.hit([(self._key(address), self.per_address)], self.WINDOW, "acks")
        except RateLimited:
            return False
        except redis.RedisError:
            return True  # unchecked: the loop checks still hold, and nothing is lost
        return True

    @contextmanager
    def given_back_on_failure(self, address: str, counted: bool) -> Iterator[None]:
        """Around the ticket an acknowledgement was counted for: if it is not stored (a
        database error, which the provider or the customer retries), the count is given
        back, so that retries do not use up the address's acknowledgements."""
        try:
            yield
        except BaseException:
            if counted:
                with suppress(redis.RedisError):  # else the window ends by itself
                    self.windows.give_back([self._key(address)])
            raise

    @staticmethod
    def _key(address: str) -> str:
        return f"sd:acks:{_digest(address)}"
