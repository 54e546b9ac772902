"""Sessions: logging in and out, a session checked on each request, a user's own password.

A login is throttled per account and per address before the password is checked, and an
unknown address costs what a wrong password costs (a dummy hash at the same bcrypt cost).
With two-factor on (accounts/two_factor.py), a right password answers a short-lived
challenge instead of a session, and `login_with_code` finishes the login; the code goes
through the same throttle, whose count the password step leaves standing until the code is
right (else a known password would clear the count between guesses of the code). Logins,
failed ones and logouts are written to the audit log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import bcrypt

from supportdesk.accounts.audit import SYSTEM, Origin, record, record_alone
from supportdesk.accounts.auth import (
    NEW_PASSWORD,
    PASSWORD,
    Challenge,
    ChallengeTokens,
    Session,
    TokenService,
    hash_cost,
    hash_password,
    password_problem,
    verify_password,
)
from supportdesk.accounts.staff import User
from supportdesk.accounts.totp import is_totp_code
from supportdesk.accounts.two_factor import CODE, TwoFactorService
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import (
    AppError,
    InvalidCredentials,
    Unauthenticated,
    ValidationFailed,
)
from supportdesk.core.fields import Body, Field, Kind
from supportdesk.core.ratelimit import LoginThrottle
from supportdesk.core.text import Problems, invalid_characters

_user_by_id = queries.user_by_id
_lock_users = queries.lock_users
_user_by_email = queries.user_by_email
_update_user = queries.update_user
_user_of_session = queries.user_of_session
_revoke_session = queries.revoke_session
_forget_expired_sessions = queries.forget_expired_sessions
_set_password_hash = queries.set_password_hash


def _login_email(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """Whatever was typed, lower-cased: an address we do not know is a 401 like a wrong
    password, never a 422 that would tell it apart."""
    if not isinstance(value, str) or not value.strip():
        problems[field.name] = field.message
        return None
    if bad := invalid_characters(value, multiline=False):
        problems[field.name] = bad
    return value.strip().lower()


def _challenge(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """The first step's challenge: any text; its signature is checked by ChallengeTokens."""
    if not isinstance(value, str) or not value:
        problems[field.name] = field.message
    return value


# Other fields are let by (closed=False): a login form carries its own.
LOGIN = Body(
    "Login",
    (
        Field(
            "email",
            Kind({"type": "string"}, _login_email),
            "Enter your email address.",
            required=True,
        ),
        # Checked whole (72 bytes at most) before the account is looked up, so that the
        # answer cannot tell known from unknown accounts.
        Field("password", PASSWORD, "Enter your password.", required=True),
    ),
    closed=False,
)
LOGIN_CODE = Body(
    "LoginCode",
    (
        Field(
            "challenge",
            Kind({"type": "string"}, _challenge),
            "Log in with your password first.",
            required=True,
        ),
        CODE,
    ),
    closed=False,
)
PASSWORD_CHANGE = Body(
    "PasswordChange",
    (
        Field("current_password", PASSWORD, "Enter your current password.", required=True),
        Field("new_password", NEW_PASSWORD, "Enter a new password.", required=True),
    ),
    closed=False,
)


class InvalidCode(AppError):
    status, code = 401, "invalid_code"
    message = "This code is not right, or was already used; enter the current one."


# What a login answers: a session (its token, the session, the account), or, for an account
# with two-factor on, the challenge that `login_with_code` takes with the code.
LoginStep = tuple[str, Session, User] | Challenge


class SessionService:
    def __init__(
        self,
        db: Database,
        tokens: TokenService,
        throttle: LoginThrottle,
        bcrypt_rounds: int,
        two_factor: TwoFactorService,
        challenges: ChallengeTokens,
    ):
        self.db = db
        self.tokens = tokens
        self.throttle = throttle
        self.bcrypt_rounds = bcrypt_rounds
        self.two_factor = two_factor
        self.challenges = challenges
        # Checked when the email is unknown, so that answer takes as long as a wrong password.
        self._dummy_hash = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(bcrypt_rounds))

    def login(
        self, email: object, password: object, address: str, origin: Origin = SYSTEM
    ) -> LoginStep:
        given = LOGIN.parse({"email": email, "password": password})
        email, password = given["email"], given["password"]
        # Counted before the password is checked: parallel guesses cannot all slip through.
        self.throttle.attempt(email, address)
        with self.db.transaction() as conn:
            user = _user_by_email(conn, email=email)
            # Asked for an unknown address too (of no account): the same queries either way.
            second_factor = self.two_factor.is_on(conn, user["id"] if user else 0)
        if user is None:
            bcrypt.checkpw(password.encode("utf-8"), self._dummy_hash)
            matches = False
        else:
            matches = verify_password(password, user["password_hash"])
        if user is None or not matches or not user["is_active"]:
            reason = (
                "unknown_account" if user is None else "password" if not matches else "inactive"
            )
            self._failed(origin, email, user, reason)
            raise InvalidCredentials()
        if hash_cost(user["password_hash"]) != self.bcrypt_rounds:
            # Made at another cost (BCRYPT_ROUNDS changed since): rehashed now, while the
            # password is at hand, so that every hash comes to cost what the dummy one does.
            with self.db.transaction() as conn:
                _set_password_hash(
                    conn,
                    id=user["id"],
                    password_hash=hash_password(password, self.bcrypt_rounds),
                    old_hash=user["password_hash"],
                )
        if second_factor:
            return self.challenges.issue(user)  # the attempt stays counted until the code
        self.throttle.succeeded(email, address)
        return self._start(user, origin, {"method": "password"})

    def login_with_code(
        self, challenge: object, code: object, address: str, origin: Origin = SYSTEM
    ) -> tuple[str, Session, User]:
        """The second step of a login with two-factor on: the challenge of the first step
        and a code of the app (or a recovery code, spent)."""
        given = LOGIN_CODE.parse({"challenge": challenge, "code": code})
        pending = self.challenges.verify(given["challenge"])
        with self.db.transaction() as conn:
            user = _user_by_id(conn, id=pending.user_id)
        if user is None or not user["is_active"] or user["token_version"] != pending.token_version:
            raise Unauthenticated(ChallengeTokens.EXPIRED)
        self.throttle.attempt(user["email"], address)
        origin = dataclasses.replace(origin, actor_id=user["id"])
        with self.db.transaction() as conn:
            accepted = self.two_factor.accept_code(conn, user["id"], given["code"], origin)
        if not accepted:
            self._failed(origin, user["email"], user, "two_factor_code")
            raise InvalidCode()
        self.throttle.succeeded(user["email"], address)
        method = "totp" if is_totp_code(given["code"]) else "recovery_code"
        return self._start(user, origin, {"method": "password", "two_factor": method})

    def _start(
        self, user: User, origin: Origin, data: Mapping[str, Any]
    ) -> tuple[str, Session, User]:
        token, session = self.tokens.issue(user)
        with self.db.transaction() as conn:
            record(
                conn,
                "LOGIN",
                dataclasses.replace(origin, actor_id=user["id"]),
                target=("user", user["id"]),
                data=data,
            )
        return token, session, user

    def _failed(self, origin: Origin, email: str, user: User | None, reason: str) -> None:
        """LOGIN_FAILED: the address as typed, the account if there is one."""
        record_alone(
            self.db,
            "LOGIN_FAILED",
            dataclasses.replace(origin, actor_id=user["id"] if user else None),
            subject=email,
            data={"reason": reason},
        )

    def logout(self, session: Session, origin: Origin = SYSTEM) -> None:
        """This session's token stops working: recorded in PostgreSQL, which a Redis flush
        or restart cannot undo."""
        with self.db.transaction() as conn:
            _forget_expired_sessions(conn, now=self.tokens.clock())
            _revoke_session(
                conn, jti=session.jti, user_id=session.user_id, expires_at=session.expires_at
            )
            record(
                conn,
                "LOGOUT",
                dataclasses.replace(origin, actor_id=session.user_id),
                target=("user", session.user_id),
            )

    def session_user(self, session: Session) -> User | None:
        """The account behind a session, with `session_revoked` (the auth middleware checks
        both on every request, in one query)."""
        with self.db.transaction() as conn:
            return _user_of_session(conn, id=session.user_id, jti=session.jti)

    def change_password(
        self, session: Session, current: object, new: object, address: str, origin: Origin
    ) -> tuple[str, Session, User]:
        """A user's own password, proven by the current one. Every other session of the user
        ends (a new token_version); this one goes on with the token returned. Wrong current
        passwords count like failed logins: a stolen session cannot guess its way on."""
        given = PASSWORD_CHANGE.parse({"current_password": current, "new_password": new})
        current, new = given["current_password"], given["new_password"]
        with self.db.transaction() as conn:
            user = _user_by_id(conn, id=session.user_id)
        if user is None or not user["is_active"]:
            raise Unauthenticated("Your account is not active.")
        self.throttle.attempt(user["email"], address)
        if not verify_password(current, user["password_hash"]):
            raise ValidationFailed({"current_password": "This is not your current password."})
        self.throttle.succeeded(user["email"], address)
        if weak := password_problem(new, user["email"]):
            raise ValidationFailed({"new_password": weak})
        if new == current:
            raise ValidationFailed({"new_password": "Choose a password you have not used here."})
        password_hash = hash_password(new, self.bcrypt_rounds)
        with self.db.transaction() as conn:
            [locked] = _lock_users(conn, ids=[user["id"]])
            if locked["token_version"] != session.token_version or not locked["is_active"]:
                raise Unauthenticated("Your session has ended; please log in again.")
            user = _update_user(
                conn,
                id=locked["id"],
                name=locked["name"],
                role=locked["role"],
                is_active=True,
                password_hash=password_hash,
                token_version=locked["token_version"] + 1,
            )
            # The old token is revoked too: its version alone already ends it, but a logout
            # recorded is what a reader of the table expects.
            _revoke_session(
                conn, jti=session.jti, user_id=session.user_id, expires_at=session.expires_at
            )
            record(
                conn, "PASSWORD_CHANGED", origin, target=("user", user["id"]), data={"by": "self"}
            )
        token, new_session = self.tokens.issue(user)
        return token, new_session, user
