"""Password hashing, session tokens, the auth middleware and the role guards.

Who may call a route is declared once, in `supportdesk/routes.py`; the middleware below
enforces it before any responder runs. Finer rules (an AGENT reaches only its own tickets,
a SUB_ADMIN manages only AGENTs) live in the services, next to the data they protect.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
import falcon
import jwt

from supportdesk.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from supportdesk.text import invalid_characters
from supportdesk.vocabulary import is_manager

SESSION_COOKIE = "session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Who may call an operation (the `who` of routes.Operation).
ANYONE = "anyone"
STAFF = "staff"  # any active staff user
MANAGERS = "managers"  # ADMIN and SUB_ADMIN
ADMINS = "admins"  # ADMIN only
STAFF_OR_LINK = "staff_or_link"  # any active staff user, or a valid signed link
LINK = "signed_link"  # a valid signed link only (the customer's view of a ticket)
PROVIDER = "signed_webhook"  # the mail provider: an HMAC of the body (WebhookSignature)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further: longer is refused, never truncated
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
    if bad := invalid_characters(password, multiline=False):
        return bad
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return f"Use at most {MAX_PASSWORD_BYTES} bytes (fewer characters if they are not ASCII)."
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        return "This password is too easy to guess; choose a less common one."
    if email and (lowered == email.lower() or lowered == email.split("@")[0].lower()):
        return "The password must not be your email address."
    return None


def check_password_length(password: str) -> None:
    """bcrypt ignores bytes past 72: refuse such input instead of truncating it (and input
    that is not text at all, such as a lone surrogate, which cannot be encoded)."""
    if bad := invalid_characters(password, multiline=False):
        raise ValidationFailed({"password": bad})
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationFailed(
            {
                "password": f"Use at most {MAX_PASSWORD_BYTES} bytes (fewer characters if they "
                "are not ASCII)."
            }
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
    PostgreSQL (AccountService.logout), and checked with the account on every request."""

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


# --- the guard (middleware.AuthMiddleware applies it) ----------------------------------------


def guard(who: str, user: Mapping[str, Any] | None, *, signed_link: bool = False) -> None:
    """Enforce a route's `who` for the (possibly absent) authenticated user; `signed_link`
    says the request carries a link the middleware has verified (SignedLinks)."""
    if who == ANYONE or (who in (STAFF_OR_LINK, LINK) and signed_link):
        return
    if who == LINK:
        raise NotFound("This link is not valid.")
    if who == STAFF_OR_LINK and user is not None:
        return
    if user is None:
        raise Unauthenticated()
    if who == MANAGERS and not is_manager(user):
        raise Forbidden()
    if who == ADMINS and user["role"] != "ADMIN":
        raise Forbidden()
    if who not in (STAFF, MANAGERS, ADMINS, PROVIDER, STAFF_OR_LINK):
        raise Forbidden()  # an unknown level protects by refusing


def set_session_cookie(resp: falcon.Response, token: str, max_age: int, secure: bool) -> None:
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        http_only=True,
        same_site="Lax",
    )


def clear_session_cookie(resp: falcon.Response, secure: bool) -> None:
    """Expire the cookie with the same attributes it was set with."""
    resp.set_cookie(
        SESSION_COOKIE,
        "",
        max_age=0,
        expires=datetime(1970, 1, 1, tzinfo=UTC),
        path="/",
        secure=secure,
        http_only=True,
        same_site="Lax",
    )


class SignedLinks:
    """Links that open one thing without a login until they expire: `?expires=<Unix
    time>&sig=<HMAC of purpose, subject and expiry>`. A purpose per kind of link (a file,
    a ticket's customer view), so that one kind can never open another."""

    def __init__(self, secret_key: str, clock: Callable[[], datetime]):
        self.secret_key = secret_key
        self.clock = clock

    def query(self, purpose: str, subject: str, days: int) -> str:
        expires = int((self.clock() + timedelta(days=days)).timestamp())
        return f"expires={expires}&sig={sign(self.secret_key, purpose, f'{subject}:{expires}')}"

    def check(self, purpose: str, subject: str, expires: str | None, sig: str | None) -> None:
        """NotFound (never a hint about which part is wrong) unless the link is valid."""
        if not (expires and expires.isascii() and expires.isdigit() and len(expires) < 12):
            raise NotFound("This link is not valid.")
        if not signature_valid(self.secret_key, purpose, f"{subject}:{expires}", sig or ""):
            raise NotFound("This link is not valid.")
        if int(expires) < self.clock().timestamp():
            raise NotFound("This link has expired; ask us for a new one.")


class WebhookSignature:
    """DESIGN.md section 6: `X-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
    with `X-Timestamp` (Unix seconds) within five minutes of now, under
    INBOUND_EMAIL_SECRET. A replay inside the window is the same email again, which the
    inbound service stores once."""

    WINDOW = 300

    def __init__(self, secret: str | None, clock: Callable[[], datetime]):
        self.secret = secret
        self.clock = clock

    def sign(self, timestamp: int, body: bytes) -> str:
        """`X-Signature` for `body` sent at `timestamp` (what a provider's relay sends)."""
        mac = self._mac(timestamp)
        mac.update(body)
        return _signature_header(mac)

    def _mac(self, timestamp: int) -> hmac.HMAC:
        """The HMAC of "<timestamp>." so far; the body is fed in after it."""
        if not self.secret:
            raise Unauthenticated("Inbound email is not configured (INBOUND_EMAIL_SECRET).")
        return hmac.new(self.secret.encode(), f"{timestamp}.".encode(), hashlib.sha256)

    def check_headers(self, timestamp: str | None, signature: str | None) -> None:
        """What can be refused before the body is read (an unsigned request must not make
        the server buffer a whole email first)."""
        if not self.secret:
            raise Unauthenticated("Inbound email is not configured (INBOUND_EMAIL_SECRET).")
        if (
            not timestamp
            or not timestamp.isascii()
            or not timestamp.isdigit()
            or len(timestamp) > 12
        ):
            raise Unauthenticated("The request is not signed (X-Timestamp).")
        if abs(self.clock().timestamp() - int(timestamp)) > self.WINDOW:
            raise Unauthenticated(
                "The signature has expired: X-Timestamp is not within five minutes."
            )
        if not signature:
            raise Unauthenticated("The request is not signed (X-Signature).")

    def start(self, timestamp: str | None, signature: str | None) -> hmac.HMAC:
        """The HMAC to feed the body into as it streams in (`finish` compares it), once the
        headers pass `check_headers`: the body need never be held whole to be verified."""
        self.check_headers(timestamp, signature)
        return self._mac(int(timestamp or 0))  # check_headers made it digits

    def finish(self, mac: hmac.HMAC, signature: str | None) -> None:
        """Unauthenticated unless the body fed into `mac` is what `signature` signed."""
        if not same_secret(_signature_header(mac), signature):
            raise Unauthenticated("The signature does not match the request.")


def _signature_header(mac: hmac.HMAC) -> str:
    return f"sha256={mac.hexdigest()}"


def sign(secret_key: str, purpose: str, value: str) -> str:
    """A short HMAC of `value` for `purpose`: proves a link came from us."""
    mac = hmac.new(secret_key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def signature_valid(secret_key: str, purpose: str, value: str, candidate: str) -> bool:
    return same_secret(sign(secret_key, purpose, value), candidate)


def same_secret(expected: str, candidate: object) -> bool:
    """Constant-time comparison that is simply False for anything odd (compare_digest raises
    on non-ASCII text, which a client controls)."""
    if not isinstance(candidate, str) or not candidate or not candidate.isascii():
        return False
    return hmac.compare_digest(expected.encode(), candidate.encode())
