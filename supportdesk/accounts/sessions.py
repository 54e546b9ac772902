"""Sessions: logging in and out, a session checked on each request, a user's own password.

A login is throttled per account and per address before the password is checked, and an
unknown address costs what a wrong password costs (a dummy hash at the same bcrypt cost).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bcrypt

from supportdesk.accounts.audit import Origin, record
from supportdesk.accounts.auth import (
    NEW_PASSWORD,
    PASSWORD,
    Session,
    TokenService,
    hash_cost,
    hash_password,
    password_problem,
    verify_password,
)
from supportdesk.accounts.staff import User
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import InvalidCredentials, Unauthenticated, ValidationFailed
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
PASSWORD_CHANGE = Body(
    "PasswordChange",
    (
        Field("current_password", PASSWORD, "Enter your current password.", required=True),
        Field("new_password", NEW_PASSWORD, "Enter a new password.", required=True),
    ),
    closed=False,
)


class SessionService:
    def __init__(
        self, db: Database, tokens: TokenService, throttle: LoginThrottle, bcrypt_rounds: int
    ):
        self.db = db
        self.tokens = tokens
        self.throttle = throttle
        self.bcrypt_rounds = bcrypt_rounds
        # Checked when the email is unknown, so that answer takes as long as a wrong password.
        self._dummy_hash = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(bcrypt_rounds))

    def login(self, email: object, password: object, address: str) -> tuple[str, Session, User]:
        given = LOGIN.parse({"email": email, "password": password})
        email, password = given["email"], given["password"]
        # Counted before the password is checked: parallel guesses cannot all slip through.
        self.throttle.attempt(email, address)
        with self.db.transaction() as conn:
            user = _user_by_email(conn, email=email)
        if user is None:
            bcrypt.checkpw(password.encode("utf-8"), self._dummy_hash)
            matches = False
        else:
            matches = verify_password(password, user["password_hash"])
        if user is None or not matches or not user["is_active"]:
            raise InvalidCredentials()
        self.throttle.succeeded(email, address)
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
        token, session = self.tokens.issue(user)
        return token, session, user

    def logout(self, session: Session) -> None:
        """This session's token stops working: recorded in PostgreSQL, which a Redis flush
        or restart cannot undo."""
        with self.db.transaction() as conn:
            _forget_expired_sessions(conn, now=self.tokens.clock())
            _revoke_session(
                conn, jti=session.jti, user_id=session.user_id, expires_at=session.expires_at
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
