"""Password reset by email (DESIGN.md section 13): asking for a link, and using it.

Asking (`request`) must not tell whether an address has an account: the answer is the same
202 whatever the address, and so is the work done while answering. The request is counted
against its client address and against the typed address (known or not), and then, unless
a limit is reached, queued in Redis as it was typed. Nothing in the web process reads the
account: the worker takes the request (`next_request`), and only there is the account
looked up, the link made (`issue`) and the email queued (mail/outbound/password_reset.py).
A request for an unknown or deactivated address is dropped by the worker. Queued requests
are at most once: one lost with Redis (flushed, or a worker killed while it held it) is
asked again by its person.

A link is `<row id>.<expiry>.<HMAC>` under SECRET_KEY, valid RESET_TTL. Its row in
`password_resets` makes it single-use, lets only a user's newest link count, and keeps the
user's token_version when it was made: a password change (which bumps it) ends the link.
Using it (`confirm`) sets the password under the usual rules and ends every session.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from supportdesk.accounts import audit
from supportdesk.accounts.audit import Origin
from supportdesk.accounts.auth import NEW_PASSWORD, hash_password, password_problem
from supportdesk.accounts.staff import User
from supportdesk.core.config import Settings
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import RateLimited, ValidationFailed
from supportdesk.core.fields import EMAIL, Body, Field, Kind
from supportdesk.core.ratelimit import FixedWindows, Window
from supportdesk.core.signing import sign, signature_valid
from supportdesk.core.text import Problems

log = logging.getLogger("supportdesk.accounts.password_resets")

RESET_TTL = timedelta(minutes=30)
PURPOSE = "password-reset"
# The Redis list of requests waiting for the worker, and how many it keeps (the newest):
# a worker down for long must not let it grow without end.
RESET_QUEUE = "password-resets"
MAX_QUEUED = 10_000
HOUR = 3600

_insert_password_reset = queries.insert_password_reset
_forget_password_resets = queries.forget_password_resets
_password_reset_to_use = queries.password_reset_to_use
_use_password_reset = queries.use_password_reset
_reset_password = queries.reset_password


def _token(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        problems[field.name] = field.message
        return None
    return value.strip()


RESET_REQUEST = Body(
    "PasswordResetRequest",
    (Field("email", EMAIL, "Enter your email address.", required=True),),
)
RESET_CONFIRM = Body(
    "PasswordResetConfirm",
    (
        Field(
            "token",
            Kind({"type": "string", "maxLength": 200}, _token),
            "This link is not valid; ask for a new one.",
            required=True,
            description="the `token` of the link in the email",
        ),
        Field("new_password", NEW_PASSWORD, "Enter a new password.", required=True),
    ),
)
# What every request is answered, whoever it names (and whether or not it was counted).
ACCEPTED = {
    "status": "accepted",
    "message": "If an active account has this address, a link to set a new password is on "
    f"its way to it. The link works once, for {int(RESET_TTL.total_seconds() // 60)} minutes.",
}
INVALID_LINK = "This link is not valid; ask for a new one."
USED_LINK = "This link has been used or replaced by a newer one; ask for a new one."
EXPIRED_LINK = "This link has expired; ask for a new one."


@dataclass(frozen=True)
class ResetRequest:
    """A request as the web process queued it, for the worker."""

    email: str
    client_ip: str | None
    request_id: str | None
    at: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "email": self.email,
                "client_ip": self.client_ip,
                "request_id": self.request_id,
                "at": self.at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> ResetRequest:
        data = json.loads(raw)
        return cls(
            str(data["email"]),
            data.get("client_ip"),
            data.get("request_id"),
            datetime.fromisoformat(data["at"]),
        )

    @property
    def origin(self) -> Origin:
        return Origin(None, self.client_ip, self.request_id)


class ResetThrottle:
    """Requests an hour per client address and per typed address, known or not (an unknown
    one is counted exactly as a known one, so the limits tell nothing either)."""

    def __init__(self, redis_client: redis.Redis, *, per_address: int, per_account: int):
        self.windows = FixedWindows(redis_client)
        self.per_address = per_address
        self.per_account = per_account

    def hit(self, email: str, address: str | None) -> None:
        """RateLimited past either limit (nothing is counted then)."""
        self.windows.hit(
            [
                Window(f"reset:address:{address or '-'}", self.per_address, HOUR),
                Window(f"reset:account:{_digest(email)}", self.per_account, HOUR),
            ],
            "Too many password-reset requests.",
        )


def _digest(email: str) -> str:
    # Hashed like the login throttle's keys: Redis holds no list of typed addresses.
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class PasswordResets:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        throttle: ResetThrottle,
        secret_key: str,
        bcrypt_rounds: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_queued: int = MAX_QUEUED,
    ):
        self.db = db
        self.redis = redis_client
        self.throttle = throttle
        self.secret_key = secret_key
        self.bcrypt_rounds = bcrypt_rounds
        self.clock = clock
        self.max_queued = max_queued

    @classmethod
    def from_settings(
        cls,
        db: Database,
        redis_client: redis.Redis,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> PasswordResets:
        """As the web process and the worker both build it."""
        throttle = ResetThrottle(
            redis_client,
            per_address=settings.password_resets_per_address,
            per_account=settings.password_resets_per_account,
        )
        return cls(db, redis_client, throttle, settings.secret_key, settings.bcrypt_rounds, clock)

    # --- asking (the web process) ----------------------------------------------------------

    def request(self, data: Mapping[str, Any], origin: Origin) -> dict[str, str]:
        """Queue a reset for the worker, unless a limit is reached; the same answer in every
        case. Only the shape of the input can fail (422), the same for any address."""
        email = RESET_REQUEST.parse(data)["email"]
        try:
            self.throttle.hit(email, origin.client_ip)
        except RateLimited:
            log.info("password reset refused by its rate limit (request %s)", origin.request_id)
            return ACCEPTED
        job = ResetRequest(email, origin.client_ip, origin.request_id, self.clock())
        queue = self.redis.pipeline(transaction=False)  # one round trip
        queue.lpush(RESET_QUEUE, job.to_json())
        queue.ltrim(RESET_QUEUE, 0, self.max_queued - 1)
        queue.execute()
        return ACCEPTED

    # --- fulfilling (the worker) -----------------------------------------------------------

    def next_request(self, timeout: float) -> ResetRequest | None:
        """The oldest queued request, waiting up to `timeout` seconds for one."""
        popped = self.redis.brpop([RESET_QUEUE], timeout=timeout)
        if popped is None:
            return None
        try:
            return ResetRequest.from_json(popped[1])
        except (ValueError, KeyError, TypeError):
            log.warning("a password-reset request that cannot be read was dropped")
            return None

    def issue(self, conn: psycopg.Connection, user: User, now: datetime) -> str:
        """A new link for `user`, in the caller's transaction (the one that queues its
        email): the older links of the user stop counting."""
        row = _insert_password_reset(
            conn,
            user_id=user["id"],
            token_version=user["token_version"],
            now=now,
            expires_at=now + RESET_TTL,
        )
        _forget_password_resets(conn, user_id=user["id"], now=now)
        return self.token(row["id"], row["expires_at"])

    def token(self, reset_id: int, expires_at: datetime) -> str:
        expires = int(expires_at.timestamp())
        return f"{reset_id}.{expires}.{sign(self.secret_key, PURPOSE, f'{reset_id}:{expires}')}"

    # --- using a link ----------------------------------------------------------------------

    def check(self, token: object) -> int:
        """The reset row a link names if its signature is ours and it has not expired (no
        database yet); else ValidationFailed on `token`."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
            raise ValidationFailed({"token": INVALID_LINK}, INVALID_LINK)
        reset_id, expires, sig = parts
        if len(expires) > 12 or not signature_valid(
            self.secret_key, PURPOSE, f"{int(reset_id)}:{expires}", sig
        ):
            raise ValidationFailed({"token": INVALID_LINK}, INVALID_LINK)
        if int(expires) <= self.clock().timestamp():
            raise ValidationFailed({"token": EXPIRED_LINK}, EXPIRED_LINK)
        return int(reset_id)

    def check_usable(self, token: object) -> None:
        """What the link's page checks before it shows the form: `check`, and that the
        link's row can still be used (ValidationFailed on `token` if not)."""
        reset_id = self.check(token)
        with self.db.transaction() as conn:
            reset = _password_reset_to_use(conn, id=reset_id)
        if reset is None:
            raise ValidationFailed({"token": INVALID_LINK}, INVALID_LINK)
        if not _usable(reset):
            raise ValidationFailed({"token": USED_LINK}, USED_LINK)

    def confirm(self, data: Mapping[str, Any], origin: Origin) -> User:
        """Set the password a link's owner chose; the link is used up and every session of
        the user ends. ValidationFailed (422) for a link that cannot be used or a password
        the rules refuse."""
        given = RESET_CONFIRM.parse(data)
        reset_id = self.check(given["token"])
        password = given["new_password"]
        # Hashed before the transaction (bcrypt's quarter second holds no connection); the
        # rule about the account's own address is checked once the account is read.
        password_hash = hash_password(password, self.bcrypt_rounds)
        now = self.clock()
        with self.db.transaction() as conn:
            reset = _password_reset_to_use(conn, id=reset_id)
            if reset is None:
                raise ValidationFailed({"token": INVALID_LINK}, INVALID_LINK)
            if not _usable(reset):
                raise ValidationFailed({"token": USED_LINK}, USED_LINK)
            if reset["expires_at"] <= now:
                raise ValidationFailed({"token": EXPIRED_LINK}, EXPIRED_LINK)
            if weak := password_problem(password, reset["email"]):
                raise ValidationFailed({"new_password": weak})
            _use_password_reset(conn, id=reset_id, now=now)
            user = _reset_password(conn, id=reset["user_id"], password_hash=password_hash, now=now)
            audit.record(
                conn,
                "PASSWORD_RESET",
                Origin(user["id"], origin.client_ip, origin.request_id),
                target=("user", user["id"]),
                now=now,
            )
        return user


def _usable(reset: Mapping[str, Any]) -> bool:
    """Not used, not replaced by a newer link, its user still active and with the password
    (token_version) it had when the link was made."""
    return (
        reset["used_at"] is None
        and reset["newest"]
        and reset["is_active"]
        and reset["issued_version"] == reset["token_version"]
    )
