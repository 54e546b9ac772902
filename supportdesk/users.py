"""Staff accounts: logging in and out, and managing staff within the role hierarchy.

ADMIN manages everyone; SUB_ADMIN creates and manages AGENTs only; AGENT manages nobody.
Only an ADMIN changes roles. Nobody deactivates or demotes the last active ADMIN, nor
themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import bcrypt
import psycopg

from supportdesk.auth import (
    Session,
    TokenService,
    check_password_length,
    hash_cost,
    hash_password,
    password_problem,
    verify_password,
)
from supportdesk.db import Database, queries
from supportdesk.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from supportdesk.ratelimit import LoginThrottle
from supportdesk.text import clean_choice, clean_email, clean_line, invalid_characters
from supportdesk.vocabulary import ROLES

PUBLIC_FIELDS = ("id", "email", "name", "role", "is_active", "created_at", "updated_at")
EDITABLE_FIELDS = frozenset({"name", "role", "is_active", "password"})

_insert_user = queries.insert_user
_user_by_id = queries.user_by_id
_lock_users = queries.lock_users
_user_by_email = queries.user_by_email
_all_users = queries.all_users
_active_users = queries.active_users
_lock_active_admin_ids = queries.lock_active_admin_ids
_update_user = queries.update_user
_count_users = queries.count_users
_user_of_session = queries.user_of_session
_revoke_session = queries.revoke_session
_forget_expired_sessions = queries.forget_expired_sessions
_set_password_hash = queries.set_password_hash
_open_tickets_of = queries.open_tickets_of

User = Mapping[str, Any]


def public_user(user: User) -> dict[str, Any]:
    """What may leave the server about a staff account: never the hash, never the version."""
    out = {field: user[field] for field in PUBLIC_FIELDS}
    out["created_at"] = user["created_at"].isoformat()
    out["updated_at"] = user["updated_at"].isoformat()
    return out


# --- input ---------------------------------------------------------------------------------


def _clean_name(value: object, problems: dict[str, str]) -> str:
    return clean_line(value, "name", 200, problems, "Enter a name.")


def _can_manage(actor: User, target_role: str) -> bool:
    """ADMIN manages every role; SUB_ADMIN only AGENTs; AGENT nobody."""
    if actor["role"] == "ADMIN":
        return True
    return actor["role"] == "SUB_ADMIN" and target_role == "AGENT"


class AccountService:
    def __init__(
        self, db: Database, tokens: TokenService, throttle: LoginThrottle, bcrypt_rounds: int
    ):
        self.db = db
        self.tokens = tokens
        self.throttle = throttle
        self.bcrypt_rounds = bcrypt_rounds
        # Checked when the email is unknown, so that answer takes as long as a wrong password.
        self._dummy_hash = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(bcrypt_rounds))

    # --- sessions ------------------------------------------------------------------------

    def login(self, email: object, password: object, address: str) -> tuple[str, Session, User]:
        problems: dict[str, str] = {}
        if not isinstance(email, str) or not email.strip():
            problems["email"] = "Enter your email address."
        elif bad := invalid_characters(email, multiline=False):
            problems["email"] = bad
        if not isinstance(password, str) or not password:
            problems["password"] = "Enter your password."
        if problems or not isinstance(email, str) or not isinstance(password, str):
            raise ValidationFailed(problems)
        email = email.strip().lower()
        # Before anything else, so that the answer cannot tell known from unknown accounts.
        check_password_length(password)
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
        self, session: Session, current: object, new: object, address: str
    ) -> tuple[str, Session, User]:
        """A user's own password, proven by the current one. Every other session of the user
        ends (a new token_version); this one goes on with the token returned. Wrong current
        passwords count like failed logins: a stolen session cannot guess its way on."""
        problems: dict[str, str] = {}
        if not isinstance(current, str) or not current:
            problems["current_password"] = "Enter your current password."
        if not isinstance(new, str) or not new:
            problems["new_password"] = "Enter a new password."
        if problems or not isinstance(current, str) or not isinstance(new, str):
            raise ValidationFailed(problems)
        with self.db.transaction() as conn:
            user = _user_by_id(conn, id=session.user_id)
        if user is None or not user["is_active"]:
            raise Unauthenticated("Your account is not active.")
        try:
            check_password_length(current)
        except ValidationFailed as error:
            raise ValidationFailed({"current_password": error.fields["password"]}) from None
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
        token, new_session = self.tokens.issue(user)
        return token, new_session, user

    # --- staff management ----------------------------------------------------------------

    def list_users(self) -> list[User]:
        with self.db.transaction() as conn:
            return _all_users(conn)

    def assignable_users(self) -> list[User]:
        with self.db.transaction() as conn:
            return _active_users(conn)

    def open_tickets(self, user_ids: list[int]) -> dict[int, int]:
        """Tickets neither resolved nor closed that each of these users holds."""
        if not user_ids:
            return {}
        with self.db.transaction() as conn:
            rows = _open_tickets_of(conn, ids=user_ids)
        return {row["user_id"]: row["open_tickets"] for row in rows}

    def get_user(self, user_id: int) -> User:
        with self.db.transaction() as conn:
            user = _user_by_id(conn, id=user_id)
        if user is None:
            raise NotFound("No such staff member.")
        return user

    def create_user(self, actor: User, data: Mapping[str, Any]) -> User:
        problems: dict[str, str] = {}
        unknown = set(data) - {"email", "name", "role", "password"}
        for field in sorted(unknown):
            problems[field] = "Unknown field."
        email = clean_email(data.get("email"), problems)
        name = _clean_name(data.get("name"), problems)
        role = clean_choice(data.get("role"), "role", ROLES, problems)
        weak = password_problem(data.get("password"), email)
        if weak:
            problems["password"] = weak
        if problems:
            raise ValidationFailed(problems)
        if not _can_manage(actor, role):
            raise Forbidden(f"You cannot create {role} accounts.")
        password_hash = hash_password(data["password"], self.bcrypt_rounds)
        try:
            with self.db.transaction() as conn:
                return _insert_user(
                    conn,
                    email=email,
                    name=name,
                    role=role,
                    password_hash=password_hash,
                    is_active=True,
                )
        except psycopg.errors.UniqueViolation:
            raise Conflict(
                "A staff member with this email already exists.",
                details={"email": "Already in use."},
            ) from None

    def update_user(self, actor: User, user_id: int, data: Mapping[str, Any]) -> User:
        problems: dict[str, str] = {}
        for field in sorted(set(data) - EDITABLE_FIELDS):
            problems[field] = "Unknown field."
        changes: dict[str, Any] = {}
        if "name" in data:
            changes["name"] = _clean_name(data["name"], problems)
        if "role" in data:
            changes["role"] = clean_choice(data["role"], "role", ROLES, problems)
        if "is_active" in data:
            if isinstance(data["is_active"], bool):
                changes["is_active"] = data["is_active"]
            else:
                problems["is_active"] = "Must be true or false."
        if "password" in data:
            changes["password"] = data["password"]
        if problems:
            raise ValidationFailed(problems)

        with self.db.transaction() as conn:
            if "role" in changes or "is_active" in changes:
                # The active ADMINs first, always in id order, then the others: two admins
                # demoting each other at once serialize here instead of deadlocking, and
                # the second sees that the first left no other active ADMIN.
                _lock_active_admin_ids(conn)
            # The actor and the target as they are now, locked in id order: a demotion or
            # deactivation of the actor that commits meanwhile is seen, not raced.
            locked = {row["id"]: row for row in _lock_users(conn, ids=[actor["id"], user_id])}
            target, current_actor = locked.get(user_id), locked.get(actor["id"])
            if current_actor is None or not current_actor["is_active"]:
                raise Unauthenticated("Your account is not active.")
            if target is None:
                raise NotFound("No such staff member.")
            if "password" in changes:
                weak = password_problem(changes["password"], target["email"])
                if weak:
                    raise ValidationFailed({"password": weak})
            row = self._authorized_changes(conn, current_actor, target, changes)
            return _update_user(conn, id=user_id, **row)

    def _authorized_changes(
        self, conn: psycopg.Connection, actor: User, target: User, changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The row after the (validated) change, or an error naming the rule it breaks."""
        if not _can_manage(actor, target["role"]):
            raise Forbidden("You cannot manage this staff member.")
        new = {
            "name": changes.get("name", target["name"]),
            "role": changes.get("role", target["role"]),
            "is_active": changes.get("is_active", target["is_active"]),
            "password_hash": target["password_hash"],
            "token_version": target["token_version"],
        }
        if new["role"] != target["role"] and actor["role"] != "ADMIN":
            raise Forbidden("Only an ADMIN changes roles.")
        is_self = actor["id"] == target["id"]
        if is_self and not new["is_active"]:
            raise Forbidden("You cannot deactivate yourself.")
        if is_self and new["role"] != target["role"]:
            raise Forbidden("You cannot change your own role.")
        loses_admin = (
            target["role"] == "ADMIN"
            and target["is_active"]
            and (new["role"] != "ADMIN" or not new["is_active"])
        )
        if loses_admin:
            admins = _lock_active_admin_ids(conn)
            if [row["id"] for row in admins] == [target["id"]]:
                raise Conflict("This is the last active ADMIN; make someone else ADMIN first.")
        if "password" in changes:
            new["password_hash"] = hash_password(changes["password"], self.bcrypt_rounds)
        # A new password or a deactivation ends every session of that user.
        if "password" in changes or (target["is_active"] and not new["is_active"]):
            new["token_version"] = target["token_version"] + 1
        return new


# --- seeding (the command line; there is no actor yet) ---------------------------------------


def create_admin(db: Database, email: str, name: str, password: str, bcrypt_rounds: int) -> User:
    """An ADMIN account, from `supportdesk create-admin` or the dev process set."""
    problems: dict[str, str] = {}
    address = clean_email(email, problems)
    clean_name = _clean_name(name, problems)
    weak = password_problem(password, address)
    if weak:
        problems["password"] = weak
    if problems:
        raise ValidationFailed(problems)
    password_hash = hash_password(password, bcrypt_rounds)
    try:
        with db.transaction() as conn:
            return _insert_user(
                conn,
                email=address,
                name=clean_name,
                role="ADMIN",
                password_hash=password_hash,
                is_active=True,
            )
    except psycopg.errors.UniqueViolation:
        raise Conflict(
            f"A staff member with the email {address} already exists.",
            details={"email": "Already in use."},
        ) from None


def count_users(db: Database) -> int:
    with db.transaction() as conn:
        return int(_count_users(conn))
