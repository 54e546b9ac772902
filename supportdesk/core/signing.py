"""HMAC signatures: signed links (a file, a ticket's customer view), the inbound webhook's
signature, and the constant-time comparison every secret goes through."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime, timedelta

from supportdesk.core.errors import NotFound, Unauthenticated


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
