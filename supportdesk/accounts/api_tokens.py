"""Personal API tokens for integrations (DESIGN.md section 13).

A token is `sd_pat_` and 43 random URL-safe characters, shown once when it is made; the
database keeps its SHA-256 only. It is accepted as `Authorization: Bearer` alone (the auth
middleware never reads one from a cookie) and acts as its user: the user's row is read on
each request, so a new role counts at once and a deactivated user's tokens stop. An expired
or revoked (deleted) token is a 401. `last_used_at` is written at most once a minute per
token, so a busy integration does not write on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from supportdesk.accounts import audit
from supportdesk.accounts.audit import Origin
from supportdesk.accounts.auth import Session
from supportdesk.accounts.staff import User
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound, Unauthenticated, ValidationFailed
from supportdesk.core.fields import LINE, Body, Field, Kind
from supportdesk.core.text import Problems
from supportdesk.core.vocabulary import MAX_TOKEN_NAME

PREFIX = "sd_pat_"
# How much of a token the list shows (the prefix and 4 characters): enough to tell apart.
SHOWN = len(PREFIX) + 4
TOUCH_EVERY = timedelta(minutes=1)

_insert_api_token = queries.insert_api_token
_api_tokens_of = queries.api_tokens_of
_delete_api_token = queries.delete_api_token
_user_of_api_token = queries.user_of_api_token
_touch_api_token = queries.touch_api_token


def _moment(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """An ISO 8601 date and time with its offset (`2027-01-31T00:00:00+00:00`, `...Z`)."""
    moment = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None or moment.utcoffset() is None:
        problems[field.name] = field.message
        return None
    return moment


NEW_API_TOKEN = Body(
    "NewApiToken",
    (
        Field(
            "name", LINE, "Name the token (what uses it).", max_length=MAX_TOKEN_NAME, required=True
        ),
        Field(
            "expires_at",
            Kind({"type": "string", "format": "date-time"}, _moment),
            "Give a date and time with its offset, like 2027-01-31T00:00:00+00:00.",
            nullable=True,
            description="when the token stops working (ISO 8601 with offset, in the future); "
            "absent or null: it works until revoked",
        ),
    ),
)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def looks_like_api_token(token: str) -> bool:
    return token.startswith(PREFIX)


def public_token(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the API shows of a token: never its hash."""

    def moment(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "created_at": row["created_at"].isoformat(),
        "expires_at": moment(row["expires_at"]),
        "last_used_at": moment(row["last_used_at"]),
    }


class ApiTokenService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.clock = clock

    def list_tokens(self, user: User) -> list[Mapping[str, Any]]:
        with self.db.transaction() as conn:
            return _api_tokens_of(conn, user_id=user["id"])

    def create(
        self, user: User, data: Mapping[str, Any], origin: Origin
    ) -> tuple[Mapping[str, Any], str]:
        """A new token of `user`: (its row, the token itself, which is never shown again)."""
        given = NEW_API_TOKEN.parse(data)
        now = self.clock()
        if given["expires_at"] is not None and given["expires_at"] <= now:
            raise ValidationFailed({"expires_at": "Choose a moment in the future."})
        token = PREFIX + secrets.token_urlsafe(32)
        with self.db.transaction() as conn:
            row = _insert_api_token(
                conn,
                user_id=user["id"],
                name=given["name"],
                token_hash=digest(token),
                prefix=token[:SHOWN],
                now=now,
                expires_at=given["expires_at"],
            )
            audit.record(
                conn,
                "TOKEN_CREATED",
                origin,
                target=("api_token", row["id"]),
                data={"name": row["name"], "user_id": user["id"]},
                now=now,
            )
        return row, token

    def revoke(self, user: User, token_id: int, origin: Origin) -> None:
        """One of one's own tokens stops working (another's is a 404)."""
        with self.db.transaction() as conn:
            row = _delete_api_token(conn, id=token_id, user_id=user["id"])
            if row is None:
                raise NotFound("No such API token.")
            audit.record(
                conn,
                "TOKEN_REVOKED",
                origin,
                target=("api_token", row["id"]),
                data={"name": row["name"], "user_id": user["id"]},
                now=self.clock(),
            )

    def authenticate(self, token: str) -> tuple[User, Session]:
        """The account a token acts for, read now, and a Session standing for the token
        (its `jti` is `pat:<id>`); Unauthenticated for an unknown, expired or revoked
        token, or a user no longer active."""
        now = self.clock()
        with self.db.transaction() as conn:
            user = _user_of_api_token(conn, token_hash=digest(token))
            if user is None:
                raise Unauthenticated("This API token is not valid; it may have been revoked.")
            expires_at = user["api_token_expires_at"]
            if expires_at is not None and expires_at <= now:
                raise Unauthenticated("This API token has expired.")
            if not user["is_active"]:
                raise Unauthenticated("Your account is not active.")
            last_used = user["api_token_last_used_at"]
            if last_used is None or now - last_used >= TOUCH_EVERY:
                _touch_api_token(conn, id=user["api_token_id"], now=now)
        # No JWT expires here: `expires_at` is now, so that a revocation recorded against
        # this stand-in (a password change made with the token) is cleared at the next
        # sweep of revoked_sessions instead of kept for ever.
        session = Session(user["id"], user["token_version"], f"pat:{user['api_token_id']}", now)
        return user, session
