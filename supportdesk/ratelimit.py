"""Counting failed logins in Redis, per account and per client address."""

from __future__ import annotations

import hashlib

import redis

from supportdesk.errors import RateLimited


class LoginThrottle:
    """Fixed windows: the first failure starts a window of `window_seconds`; past the limit
    within it, every login attempt for that account (or from that address) is a 429 until
    the window ends, whether the email exists or not."""

    def __init__(
        self, redis_client: redis.Redis, *, per_account: int, per_address: int, window_seconds: int
    ):
        self.redis = redis_client
        self.per_account = per_account
        self.per_address = per_address
        self.window = window_seconds

    def check(self, email: str, address: str) -> None:
        """Raise RateLimited when either counter is at its limit."""
        keys = (self._account_key(email), self._address_key(address))
        with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            account, account_ttl, addr, addr_ttl = pipe.execute()
        waits = []
        if account is not None and int(account) >= self.per_account:
            waits.append(account_ttl)
        if addr is not None and int(addr) >= self.per_address:
            waits.append(addr_ttl)
        if waits:
            raise RateLimited(
                max(max(waits), 1),
                "Too many failed login attempts; please wait before trying again.",
            )

    def record_failure(self, email: str, address: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            for key in (self._account_key(email), self._address_key(address)):
                # The first failure creates the counter with the window as its expiry; INCR
                # keeps it. (EXPIRE .. NX would do the same but needs Redis 7.)
                pipe.set(key, 0, ex=self.window, nx=True)
                pipe.incr(key)
            pipe.execute()

    def record_success(self, email: str) -> None:
        """A successful login clears its account's count (not the address's)."""
        self.redis.delete(self._account_key(email))

    @staticmethod
    def _account_key(email: str) -> str:
        # Hashed: keys stay short and Redis holds no list of who tried to log in.
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"sd:login:account:{digest}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"sd:login:address:{address}"
