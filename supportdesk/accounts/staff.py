"""Staff accounts: managing staff within the role hierarchy (logging in is `sessions`).

ADMIN manages everyone; SUB_ADMIN creates and manages AGENTs only; AGENT manages nobody.
Only an ADMIN changes roles. Nobody deactivates or demotes the last active ADMIN, nor
themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import psycopg

from supportdesk.accounts.audit import SYSTEM, Origin, record
from supportdesk.accounts.auth import NEW_PASSWORD, hash_password, password_problem
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from supportdesk.core.fields import CHOICE, EMAIL, FLAG, LINE, Body, Field
from supportdesk.core.vocabulary import MAX_NAME, ROLES

PUBLIC_FIELDS = ("id", "email", "name", "role", "is_active", "created_at", "updated_at")

_insert_user = queries.insert_user
_user_by_id = queries.user_by_id
_lock_users = queries.lock_users
_all_users = queries.all_users
_active_users = queries.active_users
_lock_active_admin_ids = queries.lock_active_admin_ids
_update_user = queries.update_user
_count_users = queries.count_users
_open_tickets_of = queries.open_tickets_of

User = Mapping[str, Any]


def public_user(user: User) -> dict[str, Any]:
    """What may leave the server about a staff account: never the hash, never the version."""
    out = {field: user[field] for field in PUBLIC_FIELDS}
    out["created_at"] = user["created_at"].isoformat()
    out["updated_at"] = user["updated_at"].isoformat()
    return out


# --- input ---------------------------------------------------------------------------------


NAME = Field("name", LINE, "Enter a name.", max_length=MAX_NAME)
NEW_USER = Body(
    "NewUser",
    (
        Field("email", EMAIL, "Enter an email address.", required=True),
        dataclasses.replace(NAME, required=True),
        Field("role", CHOICE, choices=ROLES, required=True),
        Field("password", NEW_PASSWORD, "Enter a password.", required=True),
    ),
)
USER_CHANGE = Body(
    "UserChange",
    (
        NAME,
        Field("role", CHOICE, choices=ROLES),
        Field("is_active", FLAG, "Must be true or false."),
        # Checked against the account's own email address once the account is read.
        Field("password", NEW_PASSWORD, "Enter a password."),
    ),
)


def _insert_new_user(conn: psycopg.Connection, new: Mapping[str, Any], password_hash: str) -> User:
    """An active account of NEW_USER's values (its password hashed before the transaction:
    bcrypt's quarter of a second holds no connection)."""
    return _insert_user(
        conn,
        email=new["email"],
        name=new["name"],
        role=new["role"],
        password_hash=password_hash,
        is_active=True,
    )


def _can_manage(actor: User, target_role: str) -> bool:
    """ADMIN manages every role; SUB_ADMIN only AGENTs; AGENT nobody."""
    if actor["role"] == "ADMIN":
        return True
    return actor["role"] == "SUB_ADMIN" and target_role == "AGENT"


class StaffService:
    """The staff list: who works here, with which role, and whether they can log in."""

    def __init__(self, db: Database, bcrypt_rounds: int):
        self.db = db
        self.bcrypt_rounds = bcrypt_rounds

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

    def create_user(self, actor: User, data: Mapping[str, Any], origin: Origin) -> User:
        new = NEW_USER.parse(data)
        if not _can_manage(actor, new["role"]):
            raise Forbidden(f"You cannot create {new['role']} accounts.")
        password_hash = hash_password(new["password"], self.bcrypt_rounds)
        try:
            with self.db.transaction() as conn:
                return _insert_audited_user(conn, new, password_hash, origin)
        except psycopg.errors.UniqueViolation:
            raise Conflict(
                "A staff member with this email already exists.",
                details={"email": "Already in use."},
            ) from None

    def update_user(
        self, actor: User, user_id: int, data: Mapping[str, Any], origin: Origin
    ) -> User:
        changes = {name: value for name, value in USER_CHANGE.parse(data).items() if name in data}
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
            _audit_changes(conn, origin, target, row, password_set="password" in changes)
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


# --- the audit log (accounts/audit.py) -------------------------------------------------------


def _insert_audited_user(
    conn: psycopg.Connection, new: Mapping[str, Any], password_hash: str, origin: Origin
) -> User:
    """The new account and its USER_CREATED row, in the caller's transaction."""
    user = _insert_new_user(conn, new, password_hash)
    record(conn, "USER_CREATED", origin, target=("user", user["id"]), data={"role": user["role"]})
    return user


def _audit_changes(
    conn: psycopg.Connection,
    origin: Origin,
    before: User,
    after: Mapping[str, Any],
    *,
    password_set: bool,
) -> None:
    """What an account change did, as the audit log names it: a role (from, to), an
    activation, a password an ADMIN or SUB_ADMIN set (its value is never written; the
    actor differing from the target says it was not the user's own)."""
    target = ("user", before["id"])
    if after["role"] != before["role"]:
        data = {"from": before["role"], "to": after["role"]}
        record(conn, "ROLE_CHANGED", origin, target=target, data=data)
    if after["is_active"] != before["is_active"]:
        action = "USER_ACTIVATED" if after["is_active"] else "USER_DEACTIVATED"
        record(conn, action, origin, target=target)
    if password_set:
        record(conn, "PASSWORD_CHANGED", origin, target=target, data={"by": "manager"})


# --- seeding (the command line; there is no actor yet) ---------------------------------------


def create_admin(
    db: Database,
    email: str,
    name: str,
    password: str,
    bcrypt_rounds: int,
    origin: Origin = SYSTEM,
) -> User:
    """An ADMIN account, from `supportdesk create-admin` or the dev process set: the
    system's doing in the audit log."""
    new = NEW_USER.parse({"email": email, "name": name, "role": "ADMIN", "password": password})
    password_hash = hash_password(new["password"], bcrypt_rounds)
    try:
        with db.transaction() as conn:
            return _insert_audited_user(conn, new, password_hash, origin)
    except psycopg.errors.UniqueViolation:
        raise Conflict(
            f"A staff member with the email {new['email']} already exists.",
            details={"email": "Already in use."},
        ) from None


def count_users(db: Database) -> int:
    with db.transaction() as conn:
        return int(_count_users(conn))
