"""The data model holds its rules in the database itself (DESIGN.md section 3)."""

from __future__ import annotations

import re
import secrets
import threading

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from supportdesk.core import vocabulary
from supportdesk.core.config import PROJECT_ROOT
from supportdesk.core.migrate import apply_migrations
from supportdesk.core.text import EMAIL_SHAPE, MAIL_SHAPE
from tests.conftest import POOLER_URL, _via_pooler, _with_database
from tests.factories import make_event, make_message, make_outbox, make_ticket, make_user

ALL_MIGRATIONS = sorted(p.stem for p in (PROJECT_ROOT / "migrations").glob("*.sql"))
TABLES = {
    "users",
    "revoked_sessions",  # logouts (issue 10): DESIGN.md section 3 lists the other seven
    "tickets",
    "ticket_messages",
    "ticket_events",
    "pid_counters",
    "attachments",
    "email_outbox",
    "mailboxes",  # issue 20: DESIGN.md sections 6 and 10
    "quarantine",
    "ticket_participants",  # issue 21: DESIGN.md section 11
    "ticket_followers",  # issue 22: DESIGN.md section 12
    "saved_replies",
    "saved_reply_files",  # issue 24: a saved reply's files (section 12)
    "blocked_senders",
    "audit_log",  # issue 23: DESIGN.md section 13
    "password_resets",
    "api_tokens",
    "webhooks",
    "webhook_deliveries",
    "pending_file_deletions",  # files of erased or purged rows, removed after the commit
    "two_factor",  # issue 23 part 1: TOTP secrets and recovery codes
    "recovery_codes",
}


def test_every_enum_has_exactly_the_designed_values(conn):
    rows = conn.execute(
        "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) "
        "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname"
    ).fetchall()
    assert dict(rows) == {name: list(labels) for name, labels in vocabulary.ENUMS.items()}


@pytest.mark.parametrize("enum", sorted(vocabulary.ENUMS))
def test_enum_rejects_unknown_value(conn, enum):
    with pytest.raises(errors.InvalidTextRepresentation):
        conn.execute(sql.SQL("SELECT 'BOGUS'::{}").format(sql.Identifier(enum)))


@pytest.mark.parametrize(
    ("column", "value"),
    [("status", "DONE"), ("priority", "CRITICAL"), ("channel", "FAX")],
)
def test_ticket_columns_reject_unknown_enum_values(conn, column, value):
    with pytest.raises(errors.InvalidTextRepresentation):
        make_ticket(conn, **{column: value})
    assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 0


def test_the_tables_exist_and_no_soft_delete_column(conn):
    tables = {
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
            "AND table_name NOT LIKE '\\_yoyo%' AND table_name NOT LIKE 'yoyo%'"
        )
    }
    assert tables == TABLES
    deleted = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'deleted_at'"
    ).fetchone()[0]
    assert deleted == 0


def test_every_timestamp_is_timestamptz(conn):
    naive = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = 'timestamp without time zone' "
        "AND table_name = ANY(%s)",
        (list(TABLES),),
    ).fetchall()
    assert naive == []


# --- CHECK constraints -------------------------------------------------------------------


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "two words@example.com", ""])
def test_user_email_must_look_like_an_email(conn, email):
    assert not EMAIL_SHAPE.match(email)  # text.py's copy of the rule agrees
    with pytest.raises(errors.CheckViolation):
        make_user(conn, email=email)


def test_user_email_is_unique_regardless_of_case(conn):
    make_user(conn, email="ana@example.com")
    with pytest.raises(errors.UniqueViolation):
        make_user(conn, email="ANA@example.com")


@pytest.mark.parametrize("subject", ["", "   ", "x" * 256])
def test_ticket_subject_must_be_non_empty_and_bounded(conn, subject):
    with pytest.raises(errors.CheckViolation):
        make_ticket(conn, subject=subject)


@pytest.mark.parametrize(
    "email", ["nobody", "a b@example.com", "a@b@example.com", "@example.com", "x" * 251 + "@y.z"]
)
def test_ticket_requester_email_must_look_like_an_email(conn, email):
    assert not (MAIL_SHAPE.match(email) and len(email) <= vocabulary.MAX_EMAIL)
    with pytest.raises(errors.CheckViolation):
        make_ticket(conn, requester_email=email)


@pytest.mark.parametrize("email", ["root@intranet", "redacted@redacted", "x@y"])
def test_mail_from_an_intranet_host_without_a_dot_is_held(conn, email):
    """Migration 0008 (issue 20): a requester, an author and an outbox recipient may have a
    host without a dot, as intranets send; users.email keeps its dot."""
    assert MAIL_SHAPE.match(email)
    assert not EMAIL_SHAPE.match(email)
    ticket = make_ticket(conn, requester_email=email)
    make_message(conn, ticket["id"], author_email=email)
    make_outbox(conn, ticket_id=ticket["id"], to_address=email)
    with pytest.raises(errors.CheckViolation):
        make_user(conn, email=email)


@pytest.mark.parametrize("pid", ["2026-00001", "202613-00001", "202611-0001", "202611-abcde"])
def test_ticket_pid_must_have_the_designed_shape(conn, pid):
    assert not vocabulary.is_pid(pid)  # the pattern every reader of a PID uses agrees
    with pytest.raises(errors.CheckViolation):
        make_ticket(conn, pid=pid)


def test_ticket_pid_is_unique(conn):
    make_ticket(conn, pid="202611-00001")
    with pytest.raises(errors.UniqueViolation):
        make_ticket(conn, pid="202611-00001")


@pytest.mark.parametrize("period", ["2026-11", "202600", "202613", "20261"])
def test_pid_counter_period_must_be_a_month(conn, period):
    with pytest.raises(errors.CheckViolation):
        conn.execute("INSERT INTO pid_counters (period, last_value) VALUES (%s, 1)", (period,))


def test_message_body_must_not_be_blank(conn):
    ticket = make_ticket(conn)
    with pytest.raises(errors.CheckViolation):
        make_message(conn, ticket["id"], body="  ")


def test_internal_note_must_be_written_by_staff(conn):
    ticket = make_ticket(conn)
    with pytest.raises(errors.CheckViolation):
        make_message(conn, ticket["id"], visibility="INTERNAL")


def test_staff_message_needs_its_author(conn):
    ticket = make_ticket(conn)
    with pytest.raises(errors.CheckViolation):
        make_message(conn, ticket["id"], author="STAFF", author_user_id=None)
    staff = make_user(conn)
    note = make_message(
        conn, ticket["id"], author="STAFF", author_user_id=staff["id"], visibility="INTERNAL"
    )
    assert note["visibility"] == "INTERNAL"


def test_inbound_message_id_is_stored_once(conn):
    ticket = make_ticket(conn)
    make_message(conn, ticket["id"], channel="EMAIL", email_message_id="<a@mail.example>")
    with pytest.raises(errors.UniqueViolation):
        make_message(conn, ticket["id"], channel="EMAIL", email_message_id="<a@mail.example>")


def test_event_data_must_be_an_object(conn):
    ticket = make_ticket(conn)
    with pytest.raises(errors.CheckViolation):
        conn.execute(
            "INSERT INTO ticket_events (ticket_id, type, data) VALUES (%s, 'CREATED', %s)",
            (ticket["id"], Jsonb([1, 2])),
        )


def _insert_attachment(conn, ticket_id, message_id, **over):
    values = {
        "filename": "invoice.pdf",
        "content_type": "application/pdf",
        "size_bytes": 10,
        "sha256": "a" * 64,
        "storage_key": secrets.token_hex(8),
    } | over
    conn.execute(
        "INSERT INTO attachments (ticket_id, message_id, filename, content_type, size_bytes, "
        "sha256, storage_key) VALUES (%(t)s, %(m)s, %(filename)s, %(content_type)s, "
        "%(size_bytes)s, %(sha256)s, %(storage_key)s)",
        {"t": ticket_id, "m": message_id} | values,
    )


@pytest.mark.parametrize(
    "over",
    [
        {"size_bytes": -1},
        {"sha256": "xyz"},
        {"filename": " "},
        {"content_type": "pdf"},
        {"storage_key": ""},
    ],
    ids=["negative-size", "bad-sha256", "blank-name", "bad-type", "blank-key"],
)
def test_attachment_checks(conn, over):
    ticket = make_ticket(conn)
    message = make_message(conn, ticket["id"])
    _insert_attachment(conn, ticket["id"], message["id"])  # the defaults are valid
    with pytest.raises(errors.CheckViolation):
        _insert_attachment(conn, ticket["id"], message["id"], **over)


def _insert_outbox(conn, **over):
    values = {
        "to_address": "customer@example.org",
        "subject": "[#202611-00001] Received",
        "body_text": "We got it.",
        "message_id": f"<{secrets.token_hex(6)}@support.example>",
        "status": "PENDING",
        "sent_at": None,
        "last_error": None,
        "kind": "ACKNOWLEDGEMENT",
        "next_attempt_at": None,
    } | over
    conn.execute(
        "INSERT INTO email_outbox (kind, to_address, subject, body_text, message_id, status, "
        "sent_at, last_error, next_attempt_at) VALUES (%(kind)s, %(to_address)s, %(subject)s, "
        "%(body_text)s, %(message_id)s, %(status)s, %(sent_at)s, %(last_error)s, "
        "%(next_attempt_at)s)",
        values,
    )


@pytest.mark.parametrize(
    "over",
    [
        {"to_address": "nobody"},
        {"subject": ""},
        {"message_id": "no-brackets"},
        {"status": "SENT"},
        {"status": "DEAD"},
        {"status": "FAILED", "last_error": "451 try later"},
    ],
    ids=[
        "bad-address",
        "blank-subject",
        "bad-message-id",
        "sent-without-time",
        "dead-without-error",
        "failed-without-retry-time",
    ],
)
def test_outbox_checks(conn, over):
    _insert_outbox(conn)  # the defaults are valid
    with pytest.raises(errors.CheckViolation):
        _insert_outbox(conn, **over)


def test_outbox_status_rejects_unknown_value(conn):
    with pytest.raises(errors.InvalidTextRepresentation):
        _insert_outbox(conn, status="LOST")


def _insert_saved_reply_file(conn, reply_id, **over):
    values = {
        "filename": "terms.pdf",
        "content_type": "application/pdf",
        "size_bytes": 10,
        "sha256": "b" * 64,
        "storage_key": f"saved-replies/{reply_id}/{secrets.token_hex(8)}",
    } | over
    conn.execute(
        "INSERT INTO saved_reply_files (saved_reply_id, filename, content_type, size_bytes, "
        "sha256, storage_key) VALUES (%(r)s, %(filename)s, %(content_type)s, %(size_bytes)s, "
        "%(sha256)s, %(storage_key)s)",
        {"r": reply_id} | values,
    )


def _saved_reply(conn) -> int:
    author = make_user(conn)
    return conn.execute(
        "INSERT INTO saved_replies (title, body, created_by) VALUES ('T', 'B', %s) RETURNING id",
        (author["id"],),
    ).fetchone()[0]


@pytest.mark.parametrize(
    "over",
    [
        {"size_bytes": -1},
        {"sha256": "xyz"},
        {"filename": " "},
        {"filename": "x" * 256},
        {"content_type": "pdf"},
        {"storage_key": ""},
    ],
    ids=["negative-size", "bad-sha256", "blank-name", "long-name", "bad-type", "blank-key"],
)
def test_saved_reply_file_checks(conn, over):
    reply = _saved_reply(conn)
    _insert_saved_reply_file(conn, reply)  # the defaults are valid
    with pytest.raises(errors.CheckViolation):
        _insert_saved_reply_file(conn, reply, **over)


def test_a_saved_reply_file_goes_with_its_saved_reply_and_its_key_is_unique(conn):
    reply, other = _saved_reply(conn), _saved_reply(conn)
    _insert_saved_reply_file(conn, reply, storage_key="saved-replies/1/a")
    _insert_saved_reply_file(conn, other)
    with pytest.raises(errors.UniqueViolation), conn.transaction():
        _insert_saved_reply_file(conn, other, storage_key="saved-replies/1/a")
    with pytest.raises(errors.ForeignKeyViolation), conn.transaction():
        _insert_saved_reply_file(conn, 999_999)
    conn.execute("DELETE FROM saved_replies WHERE id = %s", (reply,))
    left = conn.execute("SELECT saved_reply_id FROM saved_reply_files").fetchall()
    assert left == [(other,)]


# --- foreign keys ------------------------------------------------------------------------


def test_ticket_cannot_be_assigned_to_unknown_user(conn):
    with pytest.raises(errors.ForeignKeyViolation):
        make_ticket(conn, assigned_to=999_999)


def test_message_of_unknown_ticket_fails_at_commit(db):
    with pytest.raises(errors.ForeignKeyViolation), db.transaction() as tx:
        # Deferred: the creating transaction may write children before the ticket.
        make_message(tx, 999_999)


def test_event_of_unknown_ticket_is_refused(conn):
    with pytest.raises(errors.ForeignKeyViolation):
        make_event(conn, 999_999)


def test_user_with_tickets_cannot_be_deleted(conn):
    user = make_user(conn)
    make_ticket(conn, assigned_to=user["id"])
    with pytest.raises(errors.ForeignKeyViolation):
        conn.execute("DELETE FROM users WHERE id = %s", (user["id"],))


# --- ticket_events is append-only --------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ticket_events SET type = 'ASSIGNED'",
        "UPDATE ticket_events SET data = '{\"x\": 1}'",
        "DELETE FROM ticket_events",
        "TRUNCATE ticket_events",
    ],
)
def test_ticket_events_refuse_changes(conn, statement):
    ticket = make_ticket(conn)
    make_event(conn, ticket["id"], data={"by": "form"})
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)
    row = conn.execute("SELECT type, data FROM ticket_events").fetchone()
    assert row == ("CREATED", {"by": "form"})


def test_deleting_a_ticket_with_events_is_refused(conn):
    ticket = make_ticket(conn)
    make_event(conn, ticket["id"])
    with pytest.raises(errors.ForeignKeyViolation):
        conn.execute("DELETE FROM tickets WHERE id = %s", (ticket["id"],))


# --- migrations --------------------------------------------------------------------------


def test_migrations_apply_on_an_empty_database_and_are_idempotent(pg_server_url):
    name = f"sdmig_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _with_database(pg_server_url, name)
        assert apply_migrations(url) == ALL_MIGRATIONS
        assert ALL_MIGRATIONS[:3] == ["0001_schema", "0002_outbox_delivery", "0003_inbound_email"]
        assert apply_migrations(url) == []
        with psycopg.connect(url) as conn:
            count = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ANY(%s)",
                (list(TABLES),),
            ).fetchone()[0]
        assert count == len(TABLES)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.skipif(not POOLER_URL, reason="needs a transaction pooler: TEST_DATABASE_POOLER_URL")
def test_migrations_apply_through_a_transaction_pooler(pg_server_url):
    """`supportdesk migrate` pointed at a transaction pooler: while other clients keep it
    busy, each of its transactions may land on another server connection, which has none
    of the statements a previous one prepared."""
    name = f"sdmig_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _via_pooler(_with_database(pg_server_url, name))
    stop = threading.Event()

    def keep_busy() -> None:
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as other:
            while not stop.is_set():
                other.execute("SELECT pg_sleep(0.002)")

    others = [threading.Thread(target=keep_busy) for _ in range(8)]
    try:
        for thread in others:
            thread.start()
        assert apply_migrations(url) == ALL_MIGRATIONS
    finally:
        stop.set()
        for thread in others:
            thread.join(10)
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("enum", sorted(vocabulary.ENUMS))
def test_code_constants_match_the_enums(conn, enum):
    """Each tuple of `supportdesk.core.vocabulary` (validation, OpenAPI, labels) is its enum."""
    labels = [
        r[0]
        for r in conn.execute(
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "WHERE t.typname = %s ORDER BY e.enumsortorder",
            (enum,),
        )
    ]
    assert labels == list(vocabulary.ENUMS[enum])


def test_every_enum_of_the_database_has_its_tuple(conn):
    names = [r[0] for r in conn.execute("SELECT typname FROM pg_type WHERE typtype = 'e'")]
    assert sorted(names) == sorted(vocabulary.ENUMS)


# Each column a CHECK constraint bounds in length, with the constant the code checks it by.
COLUMN_LIMITS = {
    ("users", "email"): vocabulary.MAX_EMAIL,
    ("users", "name"): vocabulary.MAX_NAME,
    ("tickets", "subject"): vocabulary.MAX_SUBJECT,
    ("tickets", "requester_email"): vocabulary.MAX_EMAIL,
    ("ticket_messages", "author_email"): vocabulary.MAX_EMAIL,
    ("email_outbox", "to_address"): vocabulary.MAX_EMAIL,
    ("tickets", "requester_name"): vocabulary.MAX_NAME,
    ("attachments", "filename"): vocabulary.MAX_FILENAME,
    ("saved_reply_files", "filename"): vocabulary.MAX_FILENAME,
    ("mailboxes", "address"): vocabulary.MAX_EMAIL,
    ("mailboxes", "display_name"): vocabulary.MAX_NAME,
    ("mailboxes", "imap_host"): vocabulary.MAX_HOST,
    ("mailboxes", "username"): vocabulary.MAX_EMAIL,
    ("ticket_participants", "email"): vocabulary.MAX_EMAIL,
    ("ticket_participants", "name"): vocabulary.MAX_NAME,
    ("saved_replies", "title"): vocabulary.MAX_TITLE,
    ("saved_replies", "body"): vocabulary.MAX_BODY,
    ("blocked_senders", "pattern"): vocabulary.MAX_EMAIL,
    ("audit_log", "subject"): vocabulary.MAX_EMAIL,
    ("api_tokens", "name"): vocabulary.MAX_TOKEN_NAME,
    ("webhooks", "url"): vocabulary.MAX_URL,
}


def test_field_limits_match_the_check_constraints(conn):
    """The limits of `supportdesk.core.vocabulary` (the checks, the OpenAPI document, the
    forms) are those the database sets: every `length(column) <= n` of every CHECK."""
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.contype = 'c' AND c.connamespace = 'public'::regnamespace"
    ).fetchall()
    found = {
        (table, column): int(limit)
        for table, definition in rows
        for column, limit in re.findall(r"length\((\w+)\) <= (\d+)", definition)
    }
    assert found == COLUMN_LIMITS


@pytest.fixture
def migrated_up_to(pg_server_url, tmp_path):
    """migrated_up_to(n) -> the URL of a new database with only the first n migrations
    applied (dropped afterwards): rows written by an older version, for a later migration."""
    import shutil

    from supportdesk.core.migrate import MIGRATIONS_DIR

    names: list[str] = []

    def make(count: int) -> str:
        name = f"sdmig_{secrets.token_hex(4)}"
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        folder = tmp_path / name
        folder.mkdir()
        for migration in ALL_MIGRATIONS[:count]:
            shutil.copy(MIGRATIONS_DIR / f"{migration}.sql", folder)
        url = _with_database(pg_server_url, name)
        apply_migrations(url, folder)
        return url

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_outbox_kind_is_filled_in_for_rows_written_before_it_existed(migrated_up_to):
    """0002 adds `kind` NOT NULL: rows already queued by the previous version are kept and
    classified (an acknowledgement carries Auto-Submitted: auto-replied)."""
    url = migrated_up_to(1)
    with psycopg.connect(url) as conn:
        for n, headers in enumerate(['{"Auto-Submitted": "auto-replied"}', "{}"]):
            conn.execute(
                "INSERT INTO email_outbox (to_address, subject, body_text, message_id, "
                "headers) VALUES ('a@example.org', 's', 'b', %s, %s)",
                (f"<m{n}@example.com>", headers),
            )
    assert apply_migrations(url) == ALL_MIGRATIONS[1:]
    with psycopg.connect(url) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM email_outbox ORDER BY id")]
    assert kinds == ["ACKNOWLEDGEMENT", "ASSIGNMENT"]


def test_sessions_logged_out_before_0004_do_not_come_back(migrated_up_to):
    """Logouts were kept in Redis until 0004 and are no longer read there: 0004 ends every
    session once (a new token_version), so none of them works again."""
    url = migrated_up_to(3)
    with psycopg.connect(url) as conn:
        make_user(conn)
        conn.execute("UPDATE users SET token_version = 3")
    apply_migrations(url)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT token_version FROM users").fetchone() == (4,)
