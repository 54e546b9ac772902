"""Nothing is lost: Redis down or flushed, a worker killed mid-send, a slow send, SIGTERM,
and many emails through two workers at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import psycopg
import pytest
import redis
import webtest

from supportdesk.dev.embedded import free_port
from supportdesk.mail.outbound.outbox import EMAIL_QUEUE, push_after_commit
from supportdesk.mail.outbound.queue import RETRY_SET, WORKERS, heartbeat_key, processing_key
from supportdesk.tickets.inputs import NewMessage
from supportdesk.tickets.messages import MessageService
from supportdesk.worker.delivery import Timings
from tests.conftest import shared_app
from tests.factories import make_outbox
from tests.worker.conftest import outbox_statuses, running, wait_until


def _queued_ids(redis_client) -> list[int]:
    return sorted(int(i) for i in redis_client.lrange(EMAIL_QUEUE, 0, -1))


def test_a_message_and_its_outbox_row_commit_or_roll_back_together(
    services, open_ticket, make_staff, db, conn
):
    """If writing the email fails, the reply is not saved either (and vice versa)."""
    ticket = open_ticket()
    agent = make_staff("ADMIN")
    conn.execute(
        "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'outbox refused for this test'; END; $$"
    )
    conn.execute(
        "CREATE TRIGGER refuse_outbox BEFORE INSERT ON email_outbox "
        "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
    )
    try:
        with pytest.raises(psycopg.errors.RaiseException, match="outbox refused"):
            services.messages.post(agent, ticket["pid"], NewMessage("Lost?"), channel="API")
    finally:
        conn.execute("DROP TRIGGER refuse_outbox ON email_outbox")
        conn.execute("DROP FUNCTION refuse_outbox()")
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM ticket_messages), (SELECT count(*) FROM email_outbox), "
        "(SELECT count(*) FROM ticket_events), (SELECT status::text FROM tickets)"
    ).fetchone()
    assert counts == (1, 1, 1, "OPEN")  # the ticket's first message, ack and CREATED only


def test_a_reply_saved_while_redis_is_down_is_delivered_once_redis_is_back(
    settings, db, redis_client, make_worker, smtp_server, open_ticket, services, make_staff
):
    ticket = open_ticket()
    agent = make_staff("ADMIN")
    dead_redis = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1)
    offline = MessageService(
        db,
        dead_redis,
        services.composer,
        services.attachments,
        copying=services.messages.copying,
        notifier=services.notifier,
        saved_files=services.messages.saved_files,
    )
    posted = offline.post(agent, ticket["pid"], NewMessage("Saved without Redis."), channel="API")
    assert posted.message["body"] == "Saved without Redis."
    assert outbox_statuses(db) == {1: "PENDING", 2: "PENDING"}
    assert _queued_ids(redis_client) == [1]  # only the acknowledgement got onto the queue

    # "Back": a worker on the real Redis; its sweeper finds the reply's row in no queue.
    with running(make_worker()):
        smtp_server.wait_for(2)
        wait_until(lambda: set(outbox_statuses(db).values()) == {"SENT"}, message="SENT")
    subjects = sorted(r.header("Subject") for r in smtp_server.received)
    assert subjects == [
        f"[#{ticket['pid']}] Re: The printer jams",
        f"[#{ticket['pid']}] We received your request: The printer jams",
    ]


def test_a_ticket_opened_over_http_while_redis_is_down_is_acknowledged_later(
    settings, db, redis_client, make_worker, smtp_server
):
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = webtest.TestApp(shared_app(dead, db))
    resp = client.post_json(
        "/api/tickets",
        {"name": "Di", "email": "di@example.org", "subject": "Hello", "body": "Anyone there?"},
        status=201,
    )
    pid = resp.json["ticket"]["pid"]
    assert redis_client.llen(EMAIL_QUEUE) == 0
    with running(make_worker()):
        [ack] = smtp_server.wait_for(1)
    assert ack.header("Subject") == f"[#{pid}] We received your request: Hello"


def test_the_sweeper_puts_back_what_redis_lost(make_worker, db, redis_client):
    """Redis flushed: PENDING rows go back on the queue, FAILED ones into the retry set at
    their due time, a SENDING one (its worker's list is gone) is reset and queued."""
    due = time.time() + 60
    with db.transaction() as conn:
        pending = make_outbox(conn)["id"]
        failed = make_outbox(
            conn, status="FAILED", attempts=1, last_error="451", next_attempt_at=_at(due)
        )["id"]
        sending = make_outbox(conn, status="SENDING", attempts=1)["id"]
        sent = make_outbox(conn, status="SENT", attempts=1, sent_at=_at(time.time()))["id"]
        fresh = make_outbox(conn)["id"]
        conn.execute(
            "UPDATE email_outbox SET updated_at = now() - interval '1 minute' WHERE id <> %s",
            (fresh,),
        )
    # The sweeper leaves rows touched within its grace (the sweep interval) alone: 30 s, so
    # that `fresh` stays within it however slowly a loaded machine gets here.
    worker = make_worker(Timings(retry_base=0.1, retry_max=0.4, max_attempts=4, sweep_every=30))
    counts = worker.sweeper.sweep()
    assert counts == {"reclaimed": 0, "requeued": 3}
    assert _queued_ids(redis_client) == sorted([pending, sending])
    assert abs(redis_client.zscore(RETRY_SET, str(failed)) - due) < 0.01
    assert outbox_statuses(db)[sending] == "PENDING"
    assert outbox_statuses(db)[sent] == "SENT"
    # The row written a moment ago is left to its writer, and a second sweep adds nothing.
    assert fresh not in _queued_ids(redis_client)
    assert worker.sweeper.sweep() == {"reclaimed": 0, "requeued": 0}


def _at(timestamp: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC)


def test_kill_9_mid_send_then_a_new_worker_delivers_everything(
    worker_process, smtp_server, db, redis_client
):
    """The first worker dies between taking an email and acknowledging it. A new worker
    reclaims its list once its heartbeat expires: every email arrives, at most the one in
    flight twice, and the log says so."""
    with db.transaction() as conn:
        ids = [make_outbox(conn)["id"] for _ in range(5)]
    hold = threading.Event()
    smtp_server.next("hold", hold)  # the first email hangs in DATA
    push_after_commit(redis_client, ids)
    first = worker_process("first")
    assert smtp_server.handler.data_arrived.wait(20), first.log_path.read_text()
    # The batch was claimed together; one email is at the mail server.
    assert set(outbox_statuses(db).values()) == {"SENDING"}
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    hold.set()  # the server may still accept that first message: the duplicate case

    second = worker_process("second")
    wait_until(
        lambda: set(outbox_statuses(db).values()) == {"SENT"},
        timeout=30,
        message="every email SENT",
    )
    counts = Counter(r.message_id for r in smtp_server.accepted())
    assert len(counts) == 5
    assert sorted(counts.values())[:-1] == [1, 1, 1, 1]  # only one can be a duplicate
    assert counts.most_common(1)[0][1] <= 2
    second.send_signal(signal.SIGTERM)
    second.wait(15)
    log = second.log_path.read_text()
    assert "stopped without finishing" in log
    assert "may receive it twice" in log
    assert redis_client.scard(WORKERS) == 0, (log, redis_client.smembers(WORKERS))  # both gone


def test_a_long_send_with_a_live_heartbeat_is_not_reclaimed(
    make_worker, smtp_server, db, redis_client
):
    timings = Timings(retry_base=0.1, retry_max=0.4, max_attempts=4, sweep_every=0.1, heartbeat=0.1)
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    smtp_server.next("stall", 1.5)  # fifteen heartbeats long
    slow, sweeper = make_worker(timings), make_worker(timings)
    push_after_commit(redis_client, [outbox_id])
    with running(slow):
        assert smtp_server.handler.data_arrived.wait(10)
        with running(sweeper):
            sweeps = []
            deadline = time.monotonic() + 1.2
            while time.monotonic() < deadline:
                redis_client.delete("sd:email:sweep-lock")
                sweeps.append(sweeper.sweeper.sweep())
                time.sleep(0.05)
            assert redis_client.lrange(processing_key(slow.worker_id), 0, -1) == [b"1"]
        wait_until(lambda: outbox_statuses(db) == {outbox_id: "SENT"}, message="SENT")
    assert all(s == {"reclaimed": 0, "requeued": 0} for s in sweeps)
    assert len(smtp_server.received) == 1


def test_sigterm_finishes_the_current_send_and_leaves_the_rest_queued(
    worker_process, smtp_server, db, redis_client
):
    with db.transaction() as conn:
        ids = [make_outbox(conn)["id"] for _ in range(3)]
    smtp_server.next("stall", 1.0)
    push_after_commit(redis_client, ids)
    proc = worker_process("stopping")
    assert smtp_server.handler.data_arrived.wait(20), proc.log_path.read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert len(smtp_server.accepted()) == 1
    statuses = outbox_statuses(db)
    assert sorted(statuses.values()) == ["PENDING", "PENDING", "SENT"]
    assert _queued_ids(redis_client) == sorted(i for i, s in statuses.items() if s == "PENDING")
    assert redis_client.scard(WORKERS) == 0
    assert not redis_client.keys(heartbeat_key("*"))


def test_a_thousand_emails_through_two_workers_are_each_delivered_once(
    worker_process, smtp_server, db, redis_client
):
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO email_outbox (kind, to_address, subject, body_text, message_id) "
            "SELECT 'NOTICE', 'n' || i || '@example.org', 'Notice ' || i, 'Hello ' || i, "
            "'<bulk.' || i || '@example.com>' FROM generate_series(1, 1000) AS i"
        )
        ids = [r[0] for r in conn.execute("SELECT id FROM email_outbox ORDER BY id")]
    push_after_commit(redis_client, ids)
    workers = [worker_process("one"), worker_process("two")]
    smtp_server.wait_for(1000, timeout=120)
    wait_until(
        lambda: set(outbox_statuses(db).values()) == {"SENT"}, timeout=60, message="all SENT"
    )
    counts = Counter(r.message_id for r in smtp_server.received)
    assert len(counts) == 1000
    assert set(counts.values()) == {1}
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    logs = [proc.log_path.read_text() for proc in workers if proc.wait(15) == 0]
    assert len(logs) == 2
    # Both took part (the queue is shared, each has its own processing list).
    assert all(log.count("outcome=sent") > 0 for log in logs)
    assert sum(log.count("outcome=sent") for log in logs) == 1000


def test_sigterm_during_a_long_send_is_not_taken_for_death(
    make_worker, smtp_server, db, redis_client
):
    """The heartbeat goes on until the last send has finished: a stopping worker's long
    send is not handed to another worker (which would send it twice)."""
    timings = Timings(retry_base=0.1, retry_max=0.4, max_attempts=4, sweep_every=0.1, heartbeat=0.1)
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    smtp_server.next("stall", 1.0)  # ten heartbeats
    slow, other = make_worker(timings), make_worker(timings)
    push_after_commit(redis_client, [outbox_id])
    with running(slow, other):
        assert smtp_server.handler.data_arrived.wait(10)
        slow.stop()
        wait_until(lambda: outbox_statuses(db) == {outbox_id: "SENT"}, message="SENT")
        time.sleep(0.5)
    assert len(smtp_server.received) == 1


def test_a_stray_copy_of_an_id_in_a_dead_workers_list_leaves_the_live_sender_alone(
    make_worker, smtp_server, db, redis_client
):
    """Only the worker that claimed a row can lose it: a copy of its id found in some dead
    worker's list does not reset the row another worker is sending."""
    timings = Timings(retry_base=0.1, retry_max=0.4, max_attempts=4, sweep_every=0.1, heartbeat=0.1)
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    smtp_server.next("stall", 1.0)
    sender, sweeper = make_worker(timings), make_worker(timings)
    push_after_commit(redis_client, [outbox_id])
    with running(sender):
        assert smtp_server.handler.data_arrived.wait(10)
        redis_client.sadd(WORKERS, "ghost")  # registered, no heartbeat: dead
        redis_client.lpush(processing_key("ghost"), str(outbox_id))
        with running(sweeper):
            wait_until(lambda: not redis_client.sismember(WORKERS, "ghost"), message="reclaim")
            wait_until(lambda: outbox_statuses(db) == {outbox_id: "SENT"}, message="SENT")
            time.sleep(0.5)
    assert len(smtp_server.received) == 1
