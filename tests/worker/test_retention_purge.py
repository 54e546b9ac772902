"""RETENTION_AFTER (DESIGN.md section 13): the scheduler purges CLOSED tickets last changed
longer ago than that, with everything hanging on them and their files, through the owner's
narrow door (migration 0017); a second run does nothing more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supportdesk.cli import _scheduler_jobs
from supportdesk.files.storage import make_storage
from supportdesk.privacy.retention import RetentionPurge
from tests.factories import make_attachment, make_event, make_message, make_outbox, make_ticket
from tests.webhook import rows

YEAR = timedelta(days=365)


def _aged(conn, ticket, *, status: str, days: int) -> None:
    conn.execute(
        "UPDATE tickets SET status = %s, updated_at = now() - make_interval(days => %s) "
        "WHERE id = %s",
        (status, days, ticket["id"]),
    )


@pytest.fixture
def storage(settings):
    return make_storage(settings)


@pytest.fixture
def desk(db, storage, make_staff):
    """An old CLOSED ticket with all that hangs on it; a recent CLOSED one; an old OPEN one;
    a newer ticket following up the old one, and another merged into it."""
    agent = make_staff("AGENT")
    with db.transaction() as conn:
        old = make_ticket(conn)
        message = make_message(conn, old["id"])
        make_event(conn, old["id"])
        file = make_attachment(conn, storage, old["id"], message["id"])
        make_outbox(conn, ticket_id=old["id"], ticket_message_id=message["id"], status="DEAD",
                    last_error="550")  # fmt: skip
        conn.execute(
            "INSERT INTO ticket_participants (ticket_id, email) VALUES (%s, 'p@example.org')",
            (old["id"],),
        )
        conn.execute(
            "INSERT INTO ticket_followers (ticket_id, user_id) VALUES (%s, %s)",
            (old["id"], agent["id"]),
        )
        _aged(conn, old, status="CLOSED", days=400)
        recent = make_ticket(conn)
        _aged(conn, recent, status="CLOSED", days=30)
        still_open = make_ticket(conn)
        _aged(conn, still_open, status="OPEN", days=400)
        follow_up = make_ticket(conn, follows_up_id=old["id"])
        merged = make_ticket(conn)
        conn.execute(
            "UPDATE tickets SET status = 'CLOSED', merged_into_id = %s WHERE id = %s",
            (old["id"], merged["id"]),
        )
    return {
        "old": old,
        "recent": recent,
        "open": still_open,
        "follow_up": follow_up,
        "merged": merged,
        "file": file,
    }


def _count(db, table: str, ticket_id: int) -> int:
    return rows(db, f"SELECT count(*) AS n FROM {table} WHERE ticket_id = %s", ticket_id)[0]["n"]


def test_old_closed_tickets_go_with_everything_and_their_files(db, storage, desk):
    purge = RetentionPurge(db, storage, YEAR)
    assert storage.exists(desk["file"]["storage_key"])
    assert purge.purge() == 1
    old = desk["old"]["id"]
    for table in ("ticket_messages", "ticket_events", "attachments", "email_outbox",
                  "ticket_participants", "ticket_followers"):  # fmt: skip
        assert _count(db, table, old) == 0, table
    left = {r["id"] for r in rows(db, "SELECT id FROM tickets")}
    assert left == {desk[k]["id"] for k in ("recent", "open", "follow_up", "merged")}
    assert not storage.exists(desk["file"]["storage_key"])
    assert rows(db, "SELECT * FROM pending_file_deletions") == []
    links = rows(db, "SELECT follows_up_id, merged_into_id FROM tickets WHERE id = ANY(%s)",
                 [desk["follow_up"]["id"], desk["merged"]["id"]])  # fmt: skip
    assert links == [{"follows_up_id": None, "merged_into_id": None}] * 2


def test_a_second_run_does_nothing_more_and_each_run_that_purges_is_audited(db, storage, desk):
    purge = RetentionPurge(db, storage, YEAR)
    assert purge.purge() == 1
    assert purge.purge() == 0
    audit = rows(db, "SELECT action::text, actor_id, data FROM audit_log")
    assert [(a["action"], a["actor_id"], a["data"]["tickets"]) for a in audit] == [
        ("TICKETS_PURGED", None, 1)
    ]


def test_batches_continue_until_none_is_due(db, storage, desk):
    with db.transaction() as conn:
        for _ in range(4):
            _aged(conn, make_ticket(conn), status="CLOSED", days=500)
    assert RetentionPurge(db, storage, YEAR, batch=2).purge() == 5
    audit = rows(db, "SELECT data FROM audit_log ORDER BY id")
    assert [a["data"]["tickets"] for a in audit] == [2, 2, 1]


def test_no_retention_keeps_everything(db, storage, desk):
    assert RetentionPurge(db, storage, None).purge() == 0
    assert len(rows(db, "SELECT id FROM tickets")) == 5
    assert rows(db, "SELECT * FROM audit_log") == []


def test_a_retention_under_a_day_acts_as_a_day(db, storage, desk):
    """The database refuses to purge work of the last day, whatever the app asks."""
    with db.transaction() as conn:
        fresh = make_ticket(conn)
        _aged(conn, fresh, status="CLOSED", days=0)
    now = datetime.now(UTC)
    assert RetentionPurge(db, storage, timedelta(minutes=1), clock=lambda: now).purge() == 2
    assert rows(db, "SELECT id FROM tickets WHERE id = %s", fresh["id"])


def test_the_scheduler_runs_the_purge(db, settings, desk):
    jobs = _scheduler_jobs(settings.replace(retention_after=YEAR))
    assert jobs["retention_purge"]() == 1
    assert jobs["retention_purge"]() == 0
