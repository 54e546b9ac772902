"""Applying the yoyo migrations of `migrations/` (plain SQL, psycopg 3 backend), and the
privileges of the application's own database role.

Migrations run as the owner of the schema (MIGRATION_DATABASE_URL). The application may run
as another role (DATABASE_URL) that owns nothing and may only read and write rows, and on
`ticket_events` only INSERT and SELECT: then the timeline stays append-only even for the
application itself, whose role cannot disable the table's triggers either.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import errors, sql
from yoyo import get_backend, read_migrations

from supportdesk.core.config import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def yoyo_url(database_url: str) -> str:
    """yoyo picks its driver from the URL scheme: `postgresql+psycopg` is psycopg 3."""
    scheme, rest = database_url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet applied; returns their ids (empty when up to date).

    yoyo holds a lock while it works, so two processes migrating at once is safe.
    """
    backend = get_backend(yoyo_url(database_url))
    # yoyo's own psycopg connection would prepare a statement run five times (psycopg's
    # default), whatever DB_PREPARE_THRESHOLD says: behind a transaction pooler the next
    # transaction may be on a server connection that lacks it ("prepared statement _pg3_0
    # does not exist"). A migration run gains nothing from prepared statements.
    backend.connection.prepare_threshold = None
    try:
        migrations = read_migrations(str(directory))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [migration.id for migration in pending]
    finally:
        backend.connection.close()


# Held while granting: processes of the dev set migrate at once, and two GRANTs on one table
# from two sessions can fail with "tuple concurrently updated".
_GRANT_LOCK = 0x5D6_0001
APPEND_ONLY = frozenset({"ticket_events", "audit_log"})


class AppRoleMissing(Exception):
    """DATABASE_URL names a role that does not exist (and may not be created here)."""


def role_of(database_url: str) -> str | None:
    """The role a connection URL logs in as: asked of the server (a pooler's user name may
    differ from the role: Supabase's `supportdesk_app.<project-ref>`), else, while the role
    does not exist yet, the URL's user name (None: the client's default)."""
    try:
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            return str(conn.execute("SELECT current_user").fetchone()[0])
    except psycopg.OperationalError:
        user = urlsplit(database_url).username
        return unquote(user) if user else None


def _ensure_role(conn: psycopg.Connection, app_role: str, *, create: bool) -> None:
    """The role exists afterwards, or AppRoleMissing says how to make it."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (app_role,)).fetchone():
        return
    if not create:
        raise AppRoleMissing(
            f"the role {app_role!r} of DATABASE_URL does not exist: create it "
            f"(CREATE ROLE {app_role} LOGIN PASSWORD '...') and migrate again"
        )
    # The grant's lock is per database: a run migrating another database of the same
    # server (a second test run, a second worker) may create the role first.
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(app_role)))
    except (errors.DuplicateObject, errors.UniqueViolation):
        pass


def grant_app_role(owner_url: str, app_role: str, *, create: bool) -> bool:
    """Give `app_role` what the application needs and nothing more; create it (LOGIN, no
    password: for servers that trust local connections) when `create` and it is missing.
    Returns False when the owner itself is the app role (nothing to restrict)."""
    with psycopg.connect(owner_url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_GRANT_LOCK,))
        owner = conn.execute("SELECT current_user").fetchone()[0]
        if app_role == owner:
            return False
        role = sql.Identifier(app_role)
        _ensure_role(conn, app_role, create=create)
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                "AND tablename NOT LIKE '%%yoyo%%' ORDER BY tablename",
                (schema,),
            )
        ]
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), role))
        for table in tables:
            rights = "SELECT, INSERT" if table in APPEND_ONLY else "SELECT, INSERT, UPDATE, DELETE"
            conn.execute(
                sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(schema, table), role)
            )
            conn.execute(
                sql.SQL("GRANT " + rights + " ON {} TO {}").format(
                    sql.Identifier(schema, table), role
                )
            )
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(
                sql.Identifier(schema), role
            )
        )
        # The narrow doors the owner made for it (erasure and purge, migration 0017): every
        # SECURITY DEFINER function of the schema, which its migration withheld from PUBLIC.
        for function in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.prosecdef ORDER BY 1",
            (schema,),
        ):
            conn.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION " + function[0] + " TO {}").format(role)
            )
    return True
