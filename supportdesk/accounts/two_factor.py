"""Two-factor authentication for staff (DESIGN.md section 13): enrolment, turning it off,
an ADMIN's reset, and the check of a code at login (`sessions.SessionService` asks for it).

- Enrolment is two steps: `start` keeps a fresh secret (sealed) that changes nothing yet;
  `confirm` with a code of it turns two-factor on and answers ten recovery codes, shown
  this once and stored hashed.
- A TOTP code is accepted once: the last accepted time step is kept per user, compared and
  set in one UPDATE. A recovery code works once, the same way.
- REQUIRE_2FA_FOR (none | admin | all) covers roles: a covered user without two-factor is
  let in only to enrol (`must_enrol`, which the route guard reads), and cannot turn it off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from supportdesk.accounts import totp
from supportdesk.accounts.audit import Origin, record
from supportdesk.accounts.auth import PASSWORD, verify_password
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from supportdesk.core.fields import Body, Field
from supportdesk.core.ratelimit import LoginThrottle
from supportdesk.core.secrets import SecretBox, SecretUnreadable

_user_by_id = queries.user_by_id
_two_factor_of = queries.two_factor_of
_lock_two_factor = queries.lock_two_factor
_start_two_factor = queries.start_two_factor
_enable_two_factor = queries.enable_two_factor
_accept_totp_step = queries.accept_totp_step
_remove_two_factor = queries.remove_two_factor
_remove_recovery_codes = queries.remove_recovery_codes
_insert_recovery_code = queries.insert_recovery_code
_use_recovery_code = queries.use_recovery_code
_recovery_codes_left = queries.recovery_codes_left

User = Mapping[str, Any]

CODE = Field("code", totp.CODE, totp.CODE_MESSAGE, required=True)
TWO_FACTOR_CONFIRM = Body("TwoFactorConfirm", (CODE,))
TWO_FACTOR_OFF = Body(
    "TwoFactorOff",
    (Field("password", PASSWORD, "Enter your password.", required=True), CODE),
)
WRONG_CODE = "This code is not right, or was already used; enter the current one."


class EnrolmentRequired(Forbidden):
    """A user whom REQUIRE_2FA_FOR covers, without two-factor: only enrolling is open."""

    code = "two_factor_enrolment_required"
    message = (
        "Your account must use two-factor authentication: set it up on your account page "
        "(/account/two-factor, or POST /api/me/2fa) before anything else."
    )


def covered(policy: str, role: str) -> bool:
    """Whether REQUIRE_2FA_FOR (`none`, `admin`, `all`) covers a role."""
    return policy == "all" or (policy == "admin" and role == "ADMIN")


def must_enrol(policy: str, user: User) -> bool:
    """A user the policy covers, without two-factor on (`two_factor_on` of the account row
    that `user_of_session` reads on every request)."""
    return covered(policy, user["role"]) and not user.get("two_factor_on", False)


@dataclass(frozen=True)
class Enrolment:
    """A started enrolment: what the app needs, as text, as a URI and as a QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str

    def public(self) -> dict[str, str]:
        return {"secret": self.secret, "otpauth_uri": self.otpauth_uri, "qr_svg": self.qr_svg}


class TwoFactorService:
    def __init__(
        self,
        db: Database,
        box: SecretBox,
        throttle: LoginThrottle,
        policy: str,
        clock: Callable[[], datetime],
    ):
        self.db = db
        self.box = box
        self.throttle = throttle
        self.policy = policy
        self.clock = clock

    # --- one's own ---------------------------------------------------------------------

    def status(self, user: User) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = _two_factor_of(conn, user_id=user["id"])
            left = _recovery_codes_left(conn, user_id=user["id"])
        return {
            "enabled": bool(row and row["enabled_at"]),
            "enrolment_started": bool(row and not row["enabled_at"]),
            "required": covered(self.policy, user["role"]),
            "recovery_codes_left": left,
        }

    def start(self, user: User) -> Enrolment:
        """A fresh secret for `user`, kept until confirmed (a new start replaces it)."""
        secret = totp.new_secret()
        with self.db.transaction() as conn:
            changed = _start_two_factor(
                conn, user_id=user["id"], secret_sealed=self.box.seal(secret), now=self.clock()
            )
        if not changed:
            raise Conflict(
                "Two-factor authentication is already on; turn it off first to enrol again."
            )
        return self._enrolment(secret, user)

    def started(self, user: User) -> Enrolment | None:
        """The enrolment `user` started and has not confirmed, if any (a page shown again)."""
        with self.db.transaction() as conn:
            row = _two_factor_of(conn, user_id=user["id"])
        if row is None or row["enabled_at"] is not None:
            return None
        try:
            return self._enrolment(self.box.open(row["secret_sealed"]), user)
        except SecretUnreadable:
            return None

    def confirm(self, user: User, data: Mapping[str, Any], origin: Origin) -> list[str]:
        """Turn two-factor on with a code of the started enrolment; the recovery codes,
        which are never shown again."""
        code = TWO_FACTOR_CONFIRM.parse(data)["code"]
        if not totp.is_totp_code(code):
            raise ValidationFailed({"code": "Enter the 6-digit code your app shows."})
        codes = totp.new_recovery_codes()
        with self.db.transaction() as conn:
            row = _lock_two_factor(conn, user_id=user["id"])
            if row is None or row["enabled_at"] is not None:
                raise Conflict(
                    "Two-factor authentication is already on."
                    if row
                    else "Start the enrolment first (POST /api/me/2fa)."
                )
            try:
                secret = self.box.open(row["secret_sealed"])
            except SecretUnreadable:
                raise Conflict("This enrolment can no longer be read; start again.") from None
            step = totp.matching_step(secret, code, self.clock())
            if step is None:
                raise ValidationFailed({"code": WRONG_CODE})
            _enable_two_factor(conn, user_id=user["id"], now=self.clock(), step=step)
            _store_recovery_codes(conn, user["id"], codes)
            record(conn, "TWO_FACTOR_ENABLED", origin, target=("user", user["id"]))
        return codes

    def disable(self, user: User, data: Mapping[str, Any], address: str, origin: Origin) -> None:
        """Turn one's own two-factor off, proven by the password and a code (a recovery code
        may stand in). Wrong ones count like failed logins."""
        given = TWO_FACTOR_OFF.parse(data)
        if covered(self.policy, user["role"]):
            raise Forbidden(
                "Your role must use two-factor authentication, so it cannot be turned off; "
                "an ADMIN can reset it if you lost your device."
            )
        with self.db.transaction() as conn:
            account = _user_by_id(conn, id=user["id"])
            state = _two_factor_of(conn, user_id=user["id"])
        if state is None or state["enabled_at"] is None:
            raise Conflict("Two-factor authentication is not on.")
        self.throttle.attempt(account["email"], address)
        if not verify_password(given["password"], account["password_hash"]):
            raise ValidationFailed({"password": "This is not your password."})
        with self.db.transaction() as conn:
            if not self.accept_code(conn, user["id"], given["code"], origin):
                raise ValidationFailed({"code": WRONG_CODE})
            _remove_two_factor(conn, user_id=user["id"])
            record(conn, "TWO_FACTOR_DISABLED", origin, target=("user", user["id"]))
        self.throttle.succeeded(account["email"], address)

    # --- an ADMIN's reset --------------------------------------------------------------

    def reset(self, actor: User, user_id: int, origin: Origin) -> None:
        """Another user's two-factor off (a lost phone): they enrol again. Not one's own,
        which takes the password and a code (`disable`)."""
        if actor["role"] != "ADMIN":
            raise Forbidden("Only an ADMIN can reset two-factor authentication.")
        if actor["id"] == user_id:
            raise Forbidden(
                "You cannot reset your own two-factor authentication; turn it off on your "
                "account page."
            )
        with self.db.transaction() as conn:
            if _user_by_id(conn, id=user_id) is None:
                raise NotFound("No such staff member.")
            if _lock_two_factor(conn, user_id=user_id) is None:
                return  # nothing to reset: nothing happened, nothing is recorded
            _remove_two_factor(conn, user_id=user_id)
            record(conn, "TWO_FACTOR_RESET", origin, target=("user", user_id))

    # --- a code at login ---------------------------------------------------------------

    def is_on(self, conn: psycopg.Connection, user_id: int) -> bool:
        row = _two_factor_of(conn, user_id=user_id)
        return bool(row and row["enabled_at"])

    def accept_code(
        self, conn: psycopg.Connection, user_id: int, code: str, origin: Origin
    ) -> bool:
        """Whether `code` (already normalized by CODE) proves the second factor of
        `user_id`, in the caller's transaction: a TOTP code not used before, or an unused
        recovery code, which is spent (and recorded as RECOVERY_CODE_USED)."""
        if totp.is_totp_code(code):
            row = _two_factor_of(conn, user_id=user_id)
            if row is None or row["enabled_at"] is None:
                return False
            try:
                secret = self.box.open(row["secret_sealed"])
            except SecretUnreadable:
                return False  # the key changed: a recovery code, or an ADMIN's reset
            step = totp.matching_step(secret, code, self.clock())
            if step is None:
                return False
            return _accept_totp_step(conn, user_id=user_id, step=step) is not None
        spent = _use_recovery_code(
            conn, user_id=user_id, code_hash=totp.recovery_hash(code), now=self.clock()
        )
        if spent is None:
            return False
        record(
            conn,
            "RECOVERY_CODE_USED",
            origin,
            target=("user", user_id),
            data={"left": _recovery_codes_left(conn, user_id=user_id)},
        )
        return True

    def _enrolment(self, secret: str, user: User) -> Enrolment:
        uri = totp.otpauth_uri(secret, user["email"])
        return Enrolment(secret, uri, totp.qr_svg(uri))


def _store_recovery_codes(conn: psycopg.Connection, user_id: int, codes: list[str]) -> None:
    _remove_recovery_codes(conn, user_id=user_id)
    for code in codes:
        _insert_recovery_code(conn, user_id=user_id, code_hash=totp.recovery_hash(code))
