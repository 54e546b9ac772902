"""Passwords (the policy and bcrypt) and the session tokens (HS256 JWTs) with their CSRF
tokens. Who may call a route is in `supportdesk.web.guards`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import jwt

from supportdesk.core.errors import Unauthenticated, ValidationFailed
from supportdesk.core.fields import Field, Kind
from supportdesk.core.signing import same_secret
from supportdesk.core.text import Problems, invalid_characters
from supportdesk.core.vocabulary import MAX_PASSWORD_BYTES, MIN_PASSWORD_LENGTH

_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "passw0rd",
        "qwertyuiop",
        "1234567890",
        "12345678910",
        "0123456789",
        "iloveyou",
        "letmein123",
        "welcome123",
        "administrator",
        "admin12345",
        "changeme",
        "changeme123",
        "supportdesk",
        "abc1234567",
        "qwerty1234",
        "qwerty12345",
        "1q2w3e4r5t",
        "11111111111",
        "aaaaaaaaaa",
    }
)


# --- passwords -----------------------------------------------------------------------------


def password_problem(password: object, email: str | None = None) -> str | None:
    """Why `password` is not acceptable as a new password, or None."""
    if not isinstance(password, str) or not password:
        return "Enter a password."
    if unusable := bcrypt_problem(password):
        return unusable
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        return "This password is too easy to guess; choose a less common one."
    if email and (lowered == email.lower() or lowered == email.split("@")[0].lower()):
        return "The password must not be your email address."
    return None


def bcrypt_problem(password: str) -> str | None:
    """bcrypt ignores bytes past 72: why such input is refused instead of truncated (and
    input that is not text at all, such as a lone surrogate, which cannot be encoded)."""
    if bad := invalid_characters(password, multiline=False):
        return bad
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return f"Use at most {MAX_PASSWORD_BYTES} bytes (fewer characters if they are not ASCII)."
    return None


def check_password_length(password: str) -> None:
    if unusable := bcrypt_problem(password):
        raise ValidationFailed({"password": unusable})


# --- the password fields of requests (core.fields kinds) ------------------------------------


def _password(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or not value:
        problems[field.name] = field.message
    elif unusable := bcrypt_problem(value):
        problems[field.name] = unusable
    return value


def _new_password(field: Field, value: Any, problems: Problems, values: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or not value:
        problems[field.name] = field.message
    elif weak := password_problem(value, values.get("email")):
        problems[field.name] = weak
    return value


# A password to check against a hash: any text bcrypt takes whole.
PASSWORD = Kind({"type": "string"}, _password)
# A password to set: the policy, and not the body's email address when it has one (the
# service checks it against the account's own where the body has none).
NEW_PASSWORD = Kind(
    {
        "type": "string",
        "minLength": MIN_PASSWORD_LENGTH,
        "description": f"at least {MIN_PASSWORD_LENGTH} characters, at most "
        f"{MAX_PASSWORD_BYTES} bytes in UTF-8, not a common one",
    },
    _new_password,
)


def hash_password(password: str, rounds: int) -> str:
    check_password_length(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def hash_cost(password_hash: str) -> int | None:
    """The bcrypt cost a hash was made at (`$2b$12$...` -> 12), or None if unreadable."""
    parts = password_hash.split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else None


def verify_password(password: str, password_hash: str) -> bool:
    check_password_length(password)
    return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))


# --- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A verified token: whose it is, and what identifies this one session."""

    user_id: int
    token_version: int
    jti: str
    expires_at: datetime


class TokenService:
    """Issues and verifies HS256 JWTs. A logout is recorded by the token's id (jti) in
    PostgreSQL (SessionService.logout), and checked with the account on every request."""

    ALGORITHM = "HS256"

    def __init__(
        self,
        secret_key: str,
        ttl: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.secret_key = secret_key
        self.ttl = ttl
        self.clock = clock

    def issue(self, user: Mapping[str, Any]) -> tuple[str, Session]:
        now = self.clock()
        session = Session(
            user["id"], user["token_version"], secrets.token_urlsafe(16), now + self.ttl
        )
        claims = {
            "sub": str(user["id"]),
            "ver": user["token_version"],
            "jti": session.jti,
            "iat": int(now.timestamp()),
            "exp": int(session.expires_at.timestamp()),
        }
        return jwt.encode(claims, self.secret_key, algorithm=self.ALGORITHM), session

    def verify(self, token: str) -> Session:
        """The session of a valid, unexpired token; else Unauthenticated."""
        try:
            claims = jwt.decode(
                token,
                self.secret_key,
                algorithms=[self.ALGORITHM],
                options={"require": ["sub", "jti", "iat", "exp", "ver"]},
            )
            session = Session(
                int(claims["sub"]),
                int(claims["ver"]),
                str(claims["jti"]),
                datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except (jwt.InvalidTokenError, TypeError, ValueError):
            raise Unauthenticated(
                "Your session is invalid or has expired; please log in."
            ) from None
        return session

    def csrf_token(self, session: Session) -> str:
        """Bound to the session: a token from one session is worthless in another."""
        return hmac.new(
            self.secret_key.encode(), f"csrf:{session.jti}".encode(), hashlib.sha256
        ).hexdigest()

    def csrf_valid(self, session: Session, candidate: str | None) -> bool:
        return same_secret(self.csrf_token(session), candidate)


# --- the second step of a login ------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """A password checked for an account with two-factor on: what the login step that asks
    for the code carries (`token`), until `expires_at`. No session exists yet."""

    token: str
    user_id: int
    token_version: int
    expires_at: datetime


class ChallengeTokens:
    """Short-lived signed challenges (HS256 JWTs) under a key of their own, derived from
    SECRET_KEY, with an audience of their own: a challenge can never pass for a session token
    (TokenService refuses it by its key and by its audience), nor a session token for one.
    It names the account and its token_version, so a password changed meanwhile ends it."""

    ALGORITHM = "HS256"
    AUDIENCE = "supportdesk:two-factor"

    def __init__(
        self,
        secret_key: str,
        ttl: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.key = hmac.new(secret_key.encode(), b"two-factor challenge", hashlib.sha256).digest()
        self.ttl = ttl
        self.clock = clock

    def issue(self, user: Mapping[str, Any]) -> Challenge:
        now = self.clock()
        expires_at = now + self.ttl
        claims = {
            "sub": str(user["id"]),
            "ver": user["token_version"],
            "aud": self.AUDIENCE,
            "jti": secrets.token_urlsafe(12),
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        token = jwt.encode(claims, self.key, algorithm=self.ALGORITHM)
        return Challenge(token, user["id"], user["token_version"], expires_at)

    def verify(self, token: object) -> Challenge:
        """The challenge of a valid, unexpired token; else Unauthenticated (the login starts
        again with the password)."""
        if not isinstance(token, str) or not token or len(token) > 2000:
            raise Unauthenticated(self.EXPIRED)
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.ALGORITHM],
                audience=self.AUDIENCE,
                # Its times are checked below against our clock (injected: tests move it),
                # not the machine's.
                options={
                    "require": ["sub", "ver", "aud", "iat", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
            challenge = Challenge(
                token,
                int(claims["sub"]),
                int(claims["ver"]),
                datetime.fromtimestamp(int(claims["exp"]), UTC),
            )
        except (jwt.InvalidTokenError, TypeError, ValueError):
            raise Unauthenticated(self.EXPIRED) from None
        if challenge.expires_at <= self.clock():
            raise Unauthenticated(self.EXPIRED)
        return challenge

    EXPIRED = "This login has expired or is not valid; please enter your password again."
