"""The scheduler (DESIGN.md sections 9 and 12) on the real things: auto-close with its event
and its notice delivered by the worker to the test SMTP server, waiting_until, idempotent
runs, two schedulers at once, a lost host's lock taken over, and `supportdesk worker`
running the jobs by itself."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import psycopg
import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.core.session_locks import LockSession
from supportdesk.mail.outbound.outbox import thread_message_ids
from supportdesk.tickets.inputs import TicketChange
from supportdesk.tickets.participants import Person, add_participants
from supportdesk.tickets.timed import TimedTickets, timed_jobs
from supportdesk.tickets.timeline import describe_event
from supportdesk.worker.scheduler import LOCK_KEY, LOCK_NAMESPACE, Scheduler
from tests.conftest import shared_app
from tests.webhook import SECRET, post_raw, rows
from tests.worker.conftest import running, wait_until

WEEK = timedelta(days=7)


def _in(days: float):
    """A clock `days` from now: the scheduler's view of a later day."""
    return lambda: datetime.now(UTC) + timedelta(days=days)


@pytest.fixture
def timed(services, db, redis_client, settings):
    """timed(days_later, after=WEEK) -> the jobs' ticket logic, its clock `days_later` on."""

    def make(days: float = 8, after: timedelta | None = WEEK, **over) -> TimedTickets:
        return TimedTickets(
            db,
            make_redis(settings),
            services.composer,
            auto_close_after=after,
            clock=_in(days),
            **over,
        )

    return make


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin", email="ana@example.com")


@pytest.fixture
def resolved(services, open_ticket, admin):
    """resolved(**over) -> a ticket opened by the form (acknowledged) and RESOLVED now."""

    def make(**over):
        ticket = open_ticket(**over)
        services.tickets.update(admin, ticket["pid"], TicketChange(status="RESOLVED"))
        return ticket

    return make


def _status(db, ticket_id: int) -> str:
    return rows(db, "SELECT status::text FROM tickets WHERE id = %s", ticket_id)[0]["status"]


def _events(db, ticket_id: int, type_: str) -> list[dict]:
    return rows(
        db,
        "SELECT actor_id, data FROM ticket_events WHERE ticket_id = %s AND type = %s ORDER BY id",
        ticket_id,
        type_,
    )


def _notices(db) -> list[dict]:
    return rows(
        db,
        "SELECT ticket_id, to_address, cc_addresses FROM email_outbox "
        "WHERE kind = 'CLOSE_NOTICE' ORDER BY id",
    )


# --- auto-close ----------------------------------------------------------------------------


def test_auto_close_closes_only_stale_resolved_tickets(
    db, services, timed, resolved, open_ticket, admin
):
    stale = resolved(subject="Printer fixed")
    still_open = open_ticket(subject="Still broken")
    waiting = open_ticket(subject="Waiting")
    services.tickets.update(admin, waiting["pid"], TicketChange(status="WAITING"))

    assert timed(days=6).close_stale_resolved() == 0  # not quiet for a week yet
    assert _status(db, stale["id"]) == "RESOLVED"

    assert timed(days=8).close_stale_resolved() == 1
    assert _status(db, stale["id"]) == "CLOSED"
    assert _status(db, still_open["id"]) == "OPEN"
    assert _status(db, waiting["id"]) == "WAITING"
    [event] = _events(db, stale["id"], "AUTO_CLOSED")
    assert event["actor_id"] is None
    [resolved_at] = [
        e["data"]
        for e in _events(db, stale["id"], "STATUS_CHANGED")
        if e["data"]["to"] == "RESOLVED"
    ]
    [when] = rows(
        db,
        "SELECT created_at FROM ticket_events WHERE ticket_id = %s AND type = 'STATUS_CHANGED'",
        stale["id"],
    )
    assert datetime.fromisoformat(event["data"]["resolved_since"]) == when["created_at"]
    assert (event["data"]["from"], event["data"]["to"]) == ("RESOLVED", "CLOSED")
    assert resolved_at == {"from": "OPEN", "to": "RESOLVED"}
    assert [n["ticket_id"] for n in _notices(db)] == [stale["id"]]
    # The timeline says so.
    last = services.tickets.timeline(admin, stale["pid"])[-1]
    assert describe_event(last).startswith("Closed automatically: resolved with no activity")


def test_activity_since_resolving_keeps_a_ticket_open_longer(db, services, timed, resolved, admin):
    ticket = resolved()
    with db.transaction() as conn:  # a note three days later is activity
        conn.execute(
            "UPDATE tickets SET updated_at = now() + interval '3 days' WHERE id = %s",
            (ticket["id"],),
        )
    assert timed(days=8).close_stale_resolved() == 0
    assert timed(days=10.5).close_stale_resolved() == 1


def test_auto_close_run_twice_closes_once_and_sends_one_notice(db, timed, resolved):
    tickets = [resolved(subject=f"Case {n}") for n in range(3)]
    jobs = timed()
    assert jobs.close_stale_resolved() == 3
    assert jobs.close_stale_resolved() == 0
    assert timed(days=30).close_stale_resolved() == 0
    assert len(_notices(db)) == 3
    for ticket in tickets:
        assert len(_events(db, ticket["id"], "AUTO_CLOSED")) == 1


def test_a_batch_is_bounded_and_the_next_run_continues(db, timed, resolved):
    for n in range(3):
        resolved(subject=f"Case {n}")
    jobs = timed(batch=2)
    assert jobs.close_stale_resolved() == 2
    assert jobs.close_stale_resolved() == 1
    assert jobs.close_stale_resolved() == 0


def test_auto_close_after_zero_does_nothing(db, timed, resolved):
    ticket = resolved()
    assert timed(days=3650, after=None).close_stale_resolved() == 0
    assert _status(db, ticket["id"]) == "RESOLVED"
    assert _notices(db) == []


def test_the_notice_is_delivered_threaded_to_the_requester_and_participants(
    db, settings, services, timed, resolved, make_worker, smtp_server, admin
):
    ticket = resolved(subject="Scanner sends blank pages")
    with db.transaction() as conn:
        row = conn.execute("SELECT * FROM tickets WHERE id = %s FOR UPDATE", (ticket["id"],))
        locked = dict(zip([c.name for c in row.description], row.fetchone(), strict=True))
        add_participants(
            conn,
            locked,
            [Person("dan@example.org", "Dan Colleague")],
            actor=admin,
            now=datetime.now(UTC),
            cap=10,
            support_address=settings.support_address,
        )
    with running(make_worker()):
        [ack] = smtp_server.wait_for(1)
        assert timed().close_stale_resolved() == 1
        _, notice = smtp_server.wait_for(2)

    pid = ticket["pid"]
    assert notice.rcpt_tos == ["cleo@example.org", "dan@example.org"]
    assert notice.header("To") == "cleo@example.org"
    assert notice.header("Cc") == "dan@example.org"
    assert notice.header("Subject") == f"[#{pid}] Closed: Scanner sends blank pages"
    assert notice.header("Auto-Submitted") == "auto-generated"
    assert notice.header("In-Reply-To") == ack.message_id
    assert ack.message_id in notice.header("References")
    assert notice.header("Reply-To").startswith(f"support+{pid}.")
    text = notice.message.get_body(("plain",)).get_content()
    assert "we have now closed it" in text
    assert "reply to this email: your reply opens a new request" in " ".join(text.split())
    html = notice.message.get_body(("html",)).get_content()
    assert "<strong>closed</strong>" in html


def test_a_reply_to_the_notice_opens_a_new_ticket_linking_the_old(
    db, settings, timed, resolved, make_worker, smtp_server
):
    ticket = resolved(subject="Scanner sends blank pages")
    with running(make_worker()):
        smtp_server.wait_for(1)
        timed().close_stale_resolved()
        _, notice = smtp_server.wait_for(2)

    inbound = settings.replace(inbound_email_secret=SECRET)
    api = webtest.TestApp(shared_app(inbound, db))
    answer = EmailMessage()
    answer["From"] = "Cleo Customer <cleo@example.org>"
    answer["To"] = notice.header("Reply-To")
    answer["Subject"] = "Re: " + notice.header("Subject")
    answer["Message-ID"] = "<after.close@example.org>"
    answer["In-Reply-To"] = notice.message_id
    answer["References"] = f"{notice.header('References')} {notice.message_id}"
    answer.set_content("It is blank again, sorry.")
    result = post_raw(api, answer.as_bytes(), status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != ticket["pid"]
    [new] = rows(
        db, "SELECT id, follows_up_id, status::text FROM tickets WHERE pid = %s", result["ticket"]
    )
    assert (new["follows_up_id"], new["status"]) == (ticket["id"], "OPEN")
    assert _status(db, ticket["id"]) == "CLOSED"
    # The notice is the last email of the old ticket's conversation (a staff reply, were it
    # reopened, would answer it); the customer's answer went to the new ticket.
    with db.transaction() as conn:
        assert thread_message_ids(conn, ticket["id"])[-1] == notice.message_id


# --- waiting_until -------------------------------------------------------------------------


def _wait_until(db, ticket_id: int, moment: datetime) -> None:
    with db.transaction() as conn:
        conn.execute(
            "UPDATE tickets SET status = 'WAITING', waiting_until = %s WHERE id = %s",
            (moment, ticket_id),
        )


def test_a_ticket_returns_to_open_when_its_wait_ends(db, timed, open_ticket, services, admin):
    due = open_ticket(subject="Due")
    later = open_ticket(subject="Later")
    now = datetime.now(UTC)
    _wait_until(db, due["id"], now + timedelta(hours=1))
    _wait_until(db, later["id"], now + timedelta(days=3))

    assert timed(days=0).reopen_waited() == 0
    jobs = timed(days=1)
    assert jobs.reopen_waited() == 1
    assert jobs.reopen_waited() == 0  # idempotent
    assert rows(db, "SELECT status::text, waiting_until FROM tickets WHERE id = %s", due["id"]) == [
        {"status": "OPEN", "waiting_until": None}
    ]
    assert _status(db, later["id"]) == "WAITING"
    [event] = _events(db, due["id"], "STATUS_CHANGED")
    assert event["actor_id"] is None
    assert event["data"]["reason"] == "waiting_until"
    assert (event["data"]["from"], event["data"]["to"]) == ("WAITING", "OPEN")
    timeline = services.tickets.timeline(admin, due["pid"])
    assert "the wait set until" in describe_event(timeline[-1])


# --- the scheduler -------------------------------------------------------------------------


def test_two_schedulers_at_once_one_does_the_work(db, settings, timed, resolved):
    tickets = [resolved(subject=f"Case {n}") for n in range(4)]
    inside, other_done = threading.Event(), threading.Event()
    first_jobs = timed()

    def slow_close() -> int:
        inside.set()  # the first scheduler holds the lock, and waits for the second to try
        assert other_done.wait(10)
        return first_jobs.close_stale_resolved()

    first = Scheduler(
        LockSession(settings.direct_database_url), {"auto_close": slow_close}, interval=60
    )
    second = Scheduler(LockSession(settings.direct_database_url), timed_jobs(timed()), interval=60)
    results = {}
    thread = threading.Thread(target=lambda: results.setdefault("first", first.run_once()))
    thread.start()
    assert inside.wait(10)
    results["second"] = second.run_once()
    other_done.set()
    thread.join(20)

    assert results["second"].ran is False
    assert results["first"].ran is True
    assert results["first"].changed == {"auto_close": 4}
    # Once the first let go, the second runs, and finds nothing left to do.
    again = second.run_once()
    assert again.ran is True
    assert again.changed == {"auto_close": 0, "waiting_until": 0}
    for ticket in tickets:
        assert len(_events(db, ticket["id"], "AUTO_CLOSED")) == 1
    assert len(_notices(db)) == 4
    first.lock.close()
    second.lock.close()


def test_two_hosts_racing_without_the_lock_still_close_each_ticket_once(db, timed, resolved):
    """The row lock and the check under it: even two runs at the same moment (a lock lost
    mid-run) change each ticket once."""
    tickets = [resolved(subject=f"Case {n}") for n in range(6)]
    start = threading.Barrier(2)
    counts: list[int] = []

    def run() -> None:
        jobs = timed()
        start.wait(5)
        counts.append(jobs.close_stale_resolved())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(counts) == 6
    assert len(_notices(db)) == 6
    for ticket in tickets:
        assert len(_events(db, ticket["id"], "AUTO_CLOSED")) == 1


def test_a_dead_hosts_lock_goes_with_its_connection(db, settings, timed, resolved):
    ticket = resolved()
    dead_host = psycopg.connect(settings.direct_database_url, autocommit=True)
    dead_host.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_KEY))
    scheduler = Scheduler(
        LockSession(settings.direct_database_url), timed_jobs(timed()), interval=60
    )
    assert scheduler.run_once().ran is False
    assert _status(db, ticket["id"]) == "RESOLVED"
    dead_host.close()  # the host dies: PostgreSQL ends its session, and the lock with it
    runs = []  # (the server ends the session a moment after the connection closes)
    wait_until(lambda: runs.append(scheduler.run_once()) or runs[-1].ran, message="taken over")
    assert runs[-1].changed["auto_close"] == 1
    assert _status(db, ticket["id"]) == "CLOSED"
    scheduler.lock.close()


def test_a_failing_job_does_not_stop_the_others(settings, timed, resolved, db):
    ticket = resolved()

    def broken() -> int:
        raise RuntimeError("a bug")

    jobs = {"broken": broken, **timed_jobs(timed())}
    scheduler = Scheduler(LockSession(settings.direct_database_url), jobs, interval=60)
    run = scheduler.run_once()
    assert run.failed == ["broken"]
    assert run.changed["auto_close"] == 1
    assert _status(db, ticket["id"]) == "CLOSED"
    scheduler.lock.close()


def test_the_worker_process_runs_the_scheduler(
    db, worker_process, resolved, open_ticket, smtp_server
):
    stale = resolved(subject="Old and resolved")
    waited = open_ticket(subject="Waited for")
    _wait_until(db, waited["id"], datetime.now(UTC) + timedelta(seconds=1))
    with db.transaction() as conn:
        conn.execute(
            "UPDATE tickets SET updated_at = now() - interval '2 hours' WHERE id = %s",
            (stale["id"],),
        )
    proc = worker_process("scheduling", SCHEDULER_SECONDS="0.2", AUTO_CLOSE_AFTER="1h")
    wait_until(
        lambda: _status(db, stale["id"]) == "CLOSED",
        timeout=20,
        message=f"the auto-close (see {proc.log_path})",
    )
    wait_until(lambda: _status(db, waited["id"]) == "OPEN", timeout=20, message="the wait's end")
    received = smtp_server.wait_for(3, timeout=20)  # two acknowledgements and the notice
    assert [r.header("Subject") for r in received].count(
        f"[#{stale['pid']}] Closed: Old and resolved"
    ) == 1
