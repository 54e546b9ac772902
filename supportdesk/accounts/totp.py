"""The codes of two-factor authentication (DESIGN.md section 13): TOTP (RFC 6238, by `pyotp`),
the enrolment QR code (an SVG drawn by `segno`, no outside service), and recovery codes.

Nothing here touches the database; `two_factor.TwoFactorService` keeps the state.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyotp
import segno

from supportdesk.core.fields import Field, Kind
from supportdesk.core.text import Problems

ISSUER = "Support Desk"
DIGITS = 6
STEP_SECONDS = 30
# Codes of the step before and after now are taken too: a phone's clock a little off, or a
# code typed as it changed (RFC 6238 section 5.2 recommends at most one step of drift).
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_LENGTH = 10  # about 49 bits each
_TOTP_CODE = re.compile(rf"^[0-9]{{{DIGITS}}}$")
_RECOVERY_CODE = re.compile(rf"^[{_RECOVERY_ALPHABET}]{{{_RECOVERY_LENGTH}}}$")


def new_secret() -> str:
    """A fresh TOTP secret: 160 random bits in base32, as authenticator apps read them."""
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, account: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app scans or takes as a link."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code in an inline <svg> element (no script, no style attribute: it
    passes the pages' Content-Security-Policy), black on white whatever the page's colours."""
    return segno.make(uri, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", title="QR code to scan with an authenticator app"
    )


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is (within the drift), or None. Every candidate is
    compared in constant time."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = time_step(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def new_recovery_codes() -> list[str]:
    """Ten codes shown to their owner once, as `abcde-fghjk`."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_hash(code: str) -> str:
    """What is stored of a recovery code (random enough that SHA-256 is all it needs)."""
    return hashlib.sha256(normalized(code).encode()).hexdigest()


def normalized(code: str) -> str:
    """A code as typed, without spaces or dashes, lower-cased."""
    return re.sub(r"[\s-]", "", code).lower()


def is_totp_code(code: str) -> bool:
    return bool(_TOTP_CODE.match(code))


def _code(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """Six digits from the app, or a recovery code; spaces and dashes as typed are ignored."""
    if not isinstance(value, str):
        problems[field.name] = field.message
        return None
    code = normalized(value)
    if not (_TOTP_CODE.match(code) or _RECOVERY_CODE.match(code)):
        problems[field.name] = field.message
        return None
    return code


# A code of the app (six digits) or, where a recovery code may stand in, one of those.
CODE = Kind(
    {
        "type": "string",
        "description": f"the {DIGITS}-digit code of the authenticator app, or a recovery code "
        "(`abcde-fghjk`; spaces and dashes are ignored)",
    },
    _code,
)
CODE_MESSAGE = f"Enter the {DIGITS}-digit code from your authenticator app, or a recovery code."
