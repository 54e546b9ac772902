"""The application runs as a role that owns nothing and may only append to ticket_events
(issue 10, finding 6): the append-only rule holds even against the application itself."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from psycopg import errors

from supportdesk.core.migrate import AppRoleMissing, grant_app_role
from tests.factories import make_event, make_ticket


@pytest.fixture
def as_app(db, app_database_url):
    with psycopg.connect(app_database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def event(conn):
    ticket = make_ticket(conn)
    return make_event(conn, ticket["id"])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ticket_events SET type = 'ASSIGNED'",
        "DELETE FROM ticket_events",
        "TRUNCATE ticket_events",
        "ALTER TABLE ticket_events DISABLE TRIGGER ticket_events_append_only",
        "DROP TRIGGER ticket_events_append_only ON ticket_events",
        "ALTER TABLE ticket_events OWNER TO CURRENT_USER",
        "DROP TABLE ticket_events",
    ],
)
def test_the_app_cannot_rewrite_the_timeline(as_app, conn, event, statement):
    # Refused for want of the privilege, not by the append-only trigger (which raises the
    # same error code, as the owner would see): the role is what is tested here.
    with pytest.raises(errors.InsufficientPrivilege, match=r"permission denied|must be owner"):
        as_app.execute(statement)
    assert conn.execute("SELECT count(*) FROM ticket_events").fetchone() == (1,)


@pytest.mark.parametrize(
    ("table", "privilege", "held"),
    [
        ("ticket_events", "SELECT", True),
        ("ticket_events", "INSERT", True),
        ("ticket_events", "UPDATE", False),
        ("ticket_events", "DELETE", False),
        ("ticket_events", "TRUNCATE", False),
        ("ticket_events", "TRIGGER", False),
        ("audit_log", "SELECT", True),
        ("audit_log", "INSERT", True),
        ("audit_log", "UPDATE", False),
        ("audit_log", "DELETE", False),
        ("audit_log", "TRUNCATE", False),
        ("tickets", "UPDATE", True),
        ("tickets", "TRUNCATE", False),
        ("revoked_sessions", "DELETE", True),
    ],
)
def test_the_app_roles_privileges(as_app, table, privilege, held):
    [has] = as_app.execute(
        "SELECT has_table_privilege(current_user, %s, %s)", (table, privilege)
    ).fetchone()
    assert has is held


def test_the_app_appends_and_reads_events_and_owns_nothing(as_app, event):
    as_app.execute(
        "INSERT INTO ticket_events (ticket_id, type, data) VALUES (%s, 'NOTE_ADDED', '{}')",
        (event["ticket_id"],),
    )
    assert as_app.execute("SELECT count(*) FROM ticket_events").fetchone() == (2,)
    owned = as_app.execute(
        "SELECT count(*) FROM pg_tables WHERE tableowner = current_user"
    ).fetchone()
    assert owned == (0,)
    with pytest.raises(errors.InsufficientPrivilege):
        as_app.execute("SELECT * FROM _yoyo_migration")  # nor the migrations' log


def test_granting_is_repeatable(database_url, app_database_url, as_app):
    from tests.conftest import APP_ROLE

    assert grant_app_role(database_url, APP_ROLE, create=False) is True
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        as_app.execute("DELETE FROM ticket_events")


def test_a_missing_role_is_named_not_created_in_production(database_url):
    role = f"sd_missing_{secrets.token_hex(3)}"
    with pytest.raises(AppRoleMissing, match=role):
        grant_app_role(database_url, role, create=False)


def test_the_owner_as_app_is_left_alone(database_url, conn):
    owner = conn.execute("SELECT current_user").fetchone()[0]
    assert grant_app_role(database_url, owner, create=False) is False


def test_the_app_role_is_asked_of_the_server(database_url, app_database_url):
    """A pooler's user name may not be the role (Supabase: `role.<project-ref>`): the role
    is what the server says; the URL's user name only while the role does not exist."""
    from supportdesk.core.migrate import role_of
    from tests.conftest import APP_ROLE

    assert role_of(app_database_url) == APP_ROLE
    missing = app_database_url.replace(APP_ROLE, "sd_not_yet_made", 1)
    assert role_of(missing) == "sd_not_yet_made"


# --- the narrow door of erasure and purge (migration 0017, DESIGN.md section 13) ---------


def test_the_app_calls_the_erasure_but_still_cannot_touch_the_timeline(as_app, conn):
    """The app role rewrites events only through privacy_erase_customer (SECURITY DEFINER,
    run as the owner); setting the trigger's switch itself gets it nowhere."""
    ticket = make_ticket(conn, requester_email="zed@example.org", requester_name="Zed Zedson")
    make_event(conn, ticket["id"], data={"requester": {"email": "zed@example.org"}})
    [counts] = as_app.execute("SELECT privacy_erase_customer('zed@example.org', NULL)").fetchone()
    assert counts["tickets"] == 1
    assert counts["events"] == 1
    data = conn.execute(
        "SELECT data FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket["id"],)
    ).fetchall()
    assert [d for (d,) in data] == [
        {"requester": {"email": "[erased]"}},
        {"requester": True, "messages": 0, "files": 0},
    ]
    as_app.execute("SET supportdesk.rewriting_history = 'on'")
    for statement in ("UPDATE ticket_events SET data = '{}'", "DELETE FROM ticket_events"):
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            as_app.execute(statement)
    assert conn.execute("SELECT count(*) FROM ticket_events").fetchone() == (2,)


def test_the_trigger_refuses_the_owner_without_the_switch_and_truncate_always(conn, event):
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        conn.execute("UPDATE ticket_events SET data = '{}'")
    with conn.transaction():  # the switch alone, as any owner's session could set it:
        conn.execute("SET LOCAL supportdesk.rewriting_history = 'on'")
        conn.execute("UPDATE ticket_events SET data = '{\"ok\": true}'")  # the owner may
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        conn.execute("TRUNCATE ticket_events")


def test_the_door_is_closed_to_other_roles(conn, database_url):
    """PUBLIC may not call the functions: only the app role was granted EXECUTE."""
    role = f"sd_stranger_{secrets.token_hex(3)}"
    conn.execute(f"CREATE ROLE {role}")
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL ROLE {role}")
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                conn.execute("SELECT privacy_erase_customer('zed@example.org', NULL)")
    finally:
        conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize(
    ("function", "detail"),
    [
        ("privacy_erase_customer(text,bigint)", "search_path="),
        ("privacy_purge_closed_tickets(timestamp with time zone,integer)", "search_path="),
    ],
)
def test_the_doors_are_definer_functions_with_a_fixed_search_path(conn, function, detail):
    secdef, config = conn.execute(
        "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = %s::regprocedure", (function,)
    ).fetchone()
    assert secdef is True
    assert any(c.startswith(detail) and "pg_temp" in c for c in config)
    assert "supportdesk.rewriting_history=on" in config


def test_the_purge_refuses_anything_closed_less_than_a_day_ago(as_app):
    with pytest.raises(errors.InvalidParameterValue, match="more than a day ago"):
        as_app.execute("SELECT privacy_purge_closed_tickets(now() - interval '1 hour', 10)")


def test_a_role_created_meanwhile_by_another_database_is_taken_as_it_is(database_url):
    """Two test runs (or two migrations of different databases) on one server: the lock
    that serializes granting is per database, so another may create the role between our
    look and our CREATE. Here the other's CREATE is held uncommitted until ours waits on it."""
    import threading

    role = f"sd_race_{secrets.token_hex(3)}"
    other = psycopg.connect(database_url)
    try:
        other.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(psycopg.sql.Identifier(role)))
        result: list[object] = []
        granting = threading.Thread(
            target=lambda: result.append(grant_app_role(database_url, role, create=True))
        )
        granting.start()
        granting.join(1.0)
        assert granting.is_alive()  # waiting on the other's uncommitted role
        other.commit()
        granting.join(10)
        assert result == [True]
    finally:
        other.rollback()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
            conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))
        other.close()
