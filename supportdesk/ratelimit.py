"""Counting failed logins in Redis, per account and per client address."""

from __future__ import annotations

import hashlib

import redis

from supportdesk.errors import RateLimited


class LoginThrottle:
    """Fixed windows: the first attempt starts a window of `window_seconds`; past the limit
    of failures within it, every login attempt for that account (or from that address) is a
    429 until the window ends, whether the email exists or not."""

    def __init__(
        self, redis_client: redis.Redis, *, per_account: int, per_address: int, window_seconds: int
    ):
        self.redis = redis_client
        self.per_account = per_account
        self.per_address = per_address
        self.window = window_seconds

    def attempt(self, email: str, address: str) -> None:
        """Count a login attempt before its password is checked; raise RateLimited when
        either count is past its limit.

        Counting first (one atomic INCR each) means parallel guesses cannot all pass the
        check while the first of them is still in bcrypt. A successful login gives its
        attempt back (`succeeded`), so only failures use up the allowance.
        """
        account, addr = self._account_key(email), self._address_key(address)
        with self.redis.pipeline(transaction=True) as pipe:
            for key in (account, addr):
                # The first attempt creates the counter with the window as its expiry; INCR
                # keeps it. (EXPIRE .. NX would do the same but needs Redis 7.)
                pipe.set(key, 0, ex=self.window, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
            _, account_count, account_ttl, _, addr_count, addr_ttl = pipe.execute()
        waits = []
        if account_count > self.per_account:
            waits.append(account_ttl)
        if addr_count > self.per_address:
            waits.append(addr_ttl)
        if waits:
            raise RateLimited(
                max(max(waits), 1),
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
        # Hashed: keys stay short and Redis holds no list of who tried to log in.
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"sd:login:account:{digest}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"sd:login:address:{address}"
