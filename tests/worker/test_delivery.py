"""One worker delivering the outbox to a real SMTP server: headers, retries, failures."""

from __future__ import annotations

import random
import time

import pytest

from supportdesk.mail.outbound.queue import RETRY_SET
from supportdesk.mail.outbound.thread_tokens import ThreadTokens
from supportdesk.tickets.inputs import NewMessage
from supportdesk.worker.delivery import Timings
from tests.factories import make_outbox
from tests.worker.conftest import FAST, outbox_statuses, running, wait_until


def _row(db, outbox_id: int) -> dict:
    with db.transaction() as conn:
        cur = conn.execute("SELECT * FROM email_outbox WHERE id = %s", (outbox_id,))
        return dict(zip([c.name for c in cur.description], cur.fetchone(), strict=True))


def _events(db, ticket_id: int) -> list[tuple[str, dict]]:
    with db.transaction() as conn:
        return [
            (r[0], r[1])
            for r in conn.execute(
                "SELECT type::text, data FROM ticket_events WHERE ticket_id = %s ORDER BY id",
                (ticket_id,),
            )
        ]


def test_an_acknowledgement_reaches_the_mailbox_with_its_headers(
    make_worker, smtp_server, open_ticket, db, settings
):
    ticket = open_ticket()
    with running(make_worker()):
        [received] = smtp_server.wait_for(1)
    row = _row(db, 1)
    message = received.message
    assert received.rcpt_tos == ["cleo@example.org"]
    token = ThreadTokens(settings.secret_key).token(ticket["pid"], "CUSTOMER")
    # Bounces and replies come back to the ticket's signed plus-address.
    assert received.mail_from == f"support+{token}@example.com"
    assert message["From"] == "Support Desk <support@example.com>"
    assert message["Reply-To"] == f"support+{token}@example.com"
    assert message["To"] == "cleo@example.org"
    assert message["Subject"] == f"[#{ticket['pid']}] We received your request: The printer jams"
    assert message["Message-ID"] == row["message_id"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert ticket["pid"] in text
    assert ticket["pid"] in html
    assert row["status"] == "SENT"
    assert row["attempts"] == 1
    assert row["sent_at"] is not None
    kinds = [kind for kind, _ in _events(db, ticket["id"])]
    assert kinds == ["CREATED", "EMAIL_SENT"]
    sent = _events(db, ticket["id"])[-1][1]
    assert sent["to"] == "cleo@example.org"
    assert sent["kind"] == "ACKNOWLEDGEMENT"


def test_a_staff_reply_is_threaded_under_the_acknowledgement(
    make_worker, smtp_server, open_ticket, services, make_staff, db
):
    ticket = open_ticket()
    agent = make_staff("ADMIN", name="Ana Admin")
    services.messages.post(agent, ticket["pid"], NewMessage("First answer."), channel="API")
    services.messages.post(agent, ticket["pid"], NewMessage("Second answer."), channel="API")
    with running(make_worker()):
        ack, first, second = smtp_server.wait_for(3)
    assert ack.message["Auto-Submitted"] == "auto-replied"
    for reply in (first, second):
        assert reply.message["Auto-Submitted"] is None
        assert reply.message["Subject"] == f"[#{ticket['pid']}] Re: The printer jams"
        assert reply.message["Reply-To"].startswith(f"support+{ticket['pid']}.")
    assert first.header("In-Reply-To") == ack.message_id
    assert first.header("References") == ack.message_id
    assert second.header("In-Reply-To") == first.message_id
    assert second.header("References") == f"{ack.message_id} {first.message_id}"
    assert "First answer." in first.message.get_body(("plain",)).get_content()
    assert "Ana Admin" in first.message.get_body(("plain",)).get_content()


def test_451_for_a_while_then_250_is_delivered_after_retries(make_worker, smtp_server, db):
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    smtp_server.next("reply", "451 4.3.0 Mailbox busy, try later", times=2)
    worker = make_worker()
    worker.queue.requeue([outbox_id])
    worker.beat()
    worker.step()  # attempt 1: 451
    row = _row(db, outbox_id)
    assert row["status"] == "FAILED"
    assert row["attempts"] == 1
    assert row["last_error"].startswith("451")
    assert row["next_attempt_at"] is not None
    assert worker.queue.redis.zscore(RETRY_SET, str(outbox_id)) is not None
    with running(worker):
        smtp_server.wait_for(1)
        wait_until(lambda: _row(db, outbox_id)["status"] == "SENT", message="SENT")
    row = _row(db, outbox_id)
    assert row["attempts"] == 3
    assert [r.answer[:3] for r in smtp_server.received] == ["451", "451", "250"]
    # Every attempt carried the same Message-ID.
    assert {r.message_id for r in smtp_server.received} == {row["message_id"]}


def test_550_is_dead_after_one_attempt_with_an_email_failed_event(
    make_worker, smtp_server, open_ticket, db
):
    ticket = open_ticket()
    smtp_server.next("reply", "550 5.1.1 No such user here")
    worker = make_worker()
    with running(worker):
        wait_until(lambda: outbox_statuses(db) == {1: "DEAD"}, message="DEAD")
    row = _row(db, 1)
    assert row["attempts"] == 1
    assert row["last_error"] == "550 5.1.1 No such user here"
    assert worker.queue.redis.zcard(RETRY_SET) == 0
    assert len(smtp_server.received) == 1
    kind, data = _events(db, ticket["id"])[-1]
    assert kind == "EMAIL_FAILED"
    assert data["error"] == "550 5.1.1 No such user here"
    assert data["to"] == "cleo@example.org"


def test_the_last_attempt_makes_it_dead(make_worker, smtp_server, open_ticket, db):
    ticket = open_ticket()
    smtp_server.next("reply", "421 4.7.0 Too busy", times=10)
    timings = Timings(retry_base=0.05, retry_max=0.1, max_attempts=3, sweep_every=5, heartbeat=1)
    with running(make_worker(timings)):
        wait_until(lambda: outbox_statuses(db) == {1: "DEAD"}, message="DEAD")
    assert _row(db, 1)["attempts"] == 3
    assert len(smtp_server.received) == 3
    assert [k for k, _ in _events(db, ticket["id"])] == ["CREATED", "EMAIL_FAILED"]


def test_a_connection_dropped_after_data_is_retried_with_the_same_message_id(
    make_worker, smtp_server, db
):
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    smtp_server.next("drop")
    worker = make_worker()
    worker.queue.requeue([outbox_id])
    with running(worker):
        smtp_server.wait_for(1)
        wait_until(lambda: _row(db, outbox_id)["status"] == "SENT", message="SENT")
    first, second = smtp_server.received
    assert first.answer == "dropped"
    assert second.accepted
    assert first.message_id == second.message_id == _row(db, outbox_id)["message_id"]
    assert _row(db, outbox_id)["attempts"] == 2


def test_smtp_server_down_for_a_while_loses_nothing_and_uses_up_no_attempts(make_worker, db):
    """An unreachable mail server is nobody's message's fault: the worker waits for it
    (one email probes, the rest stay queued) and nothing runs out of attempts, however
    long it takes."""
    from tests.mailserver import SmtpTestServer

    server = SmtpTestServer()  # not started yet: connections are refused
    with db.transaction() as conn:
        ids = [make_outbox(conn)["id"] for _ in range(3)]
    timings = Timings(
        retry_base=0.05, retry_max=0.1, max_attempts=2, sweep_every=0.2, heartbeat=0.2
    )
    worker = make_worker(timings, port=server.port)
    worker.queue.requeue(ids)
    with running(worker):
        wait_until(lambda: "FAILED" in outbox_statuses(db).values(), message="a probe")
        time.sleep(1.0)  # many probes at this pace, and max_attempts is 2
        statuses = outbox_statuses(db)
        assert "DEAD" not in statuses.values()
        assert set(statuses.values()) <= {"FAILED", "PENDING", "SENDING"}
        # The probe is FAILED between tries, SENDING or PENDING during one: wait for a
        # moment between (a snapshot taken during a try has no FAILED row).
        failed: list[int] = []

        def between_tries() -> bool:
            failed[:] = [i for i, s in outbox_statuses(db).items() if s == "FAILED"]
            return bool(failed)

        wait_until(between_tries, message="the probe between tries")
        probe = _row(db, failed[0])
        assert probe["attempts"] == 0
        assert probe["last_error"].startswith("SMTP server unreachable")
        server.start()
        try:
            server.wait_for(3)
            wait_until(lambda: set(outbox_statuses(db).values()) == {"SENT"}, message="SENT")
        finally:
            server.stop()
    assert sorted(r.message_id for r in server.received) == sorted(
        _row(db, i)["message_id"] for i in ids
    )
    assert [_row(db, i)["attempts"] for i in ids] == [1, 1, 1]


def test_a_duplicate_id_on_the_queue_is_sent_once(make_worker, smtp_server, db):
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    worker = make_worker()
    worker.queue.requeue([outbox_id, outbox_id, outbox_id])
    with running(worker):
        smtp_server.wait_for(1)
        wait_until(lambda: worker.queue.redis.llen("sd:email:queue") == 0, message="drained")
    assert len(smtp_server.received) == 1


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 22.5, 37.5), (2, 45, 75), (3, 90, 150), (8, 2700, 4500), (20, 2700, 4500)],
)
def test_retry_delays_double_with_jitter_up_to_the_maximum(attempts, low, high):
    timings = Timings(retry_base=30, retry_max=3600)
    rng = random.Random(attempts)
    delays = [timings.retry_delay(attempts, rng.random) for _ in range(200)]
    assert low <= min(delays)
    assert max(delays) <= high
    assert max(delays) - min(delays) > (high - low) / 2  # jittered, not fixed


def test_the_fast_timings_of_these_tests_are_the_settings_names():
    """FAST is what the subprocess workers get from the environment, too."""
    assert FAST.retry_base == 0.1
    assert FAST.heartbeat == 0.2


def test_a_refused_recipient_is_dead_at_once(make_worker, smtp_server, db):
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    smtp_server.handler.rcpt_replies.append("550 5.1.1 <customer@example.org>: unknown")
    worker = make_worker()
    worker.queue.requeue([outbox_id])
    with running(worker):
        wait_until(lambda: outbox_statuses(db) == {outbox_id: "DEAD"}, message="DEAD")
    assert _row(db, outbox_id)["last_error"].startswith("550 5.1.1")
    assert smtp_server.received == []


def test_our_sender_refused_is_configuration_and_kills_nothing(make_worker, smtp_server, db):
    """530 "authenticate first" to MAIL FROM would refuse every email alike: it is retried
    without using up attempts, and delivered once the server accepts us."""
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    smtp_server.handler.mail_replies.extend(["530 5.7.0 Authentication required"] * 3)
    worker = make_worker()
    worker.queue.requeue([outbox_id])
    with running(worker):
        smtp_server.wait_for(1)
        wait_until(lambda: outbox_statuses(db) == {outbox_id: "SENT"}, message="SENT")
    assert _row(db, outbox_id)["attempts"] == 1


def test_an_early_copy_of_a_retrying_id_does_not_send_before_its_time(make_worker, smtp_server, db):
    from datetime import UTC, datetime, timedelta

    with db.transaction() as conn:
        outbox_id = make_outbox(
            conn,
            status="FAILED",
            attempts=1,
            last_error="451",
            next_attempt_at=datetime.now(UTC) + timedelta(minutes=10),
        )["id"]
    worker = make_worker()
    worker.beat()
    worker.queue.requeue([outbox_id])
    worker.step()
    assert smtp_server.received == []
    assert outbox_statuses(db) == {outbox_id: "FAILED"}
    assert worker.queue.leftovers() == []


def test_an_id_left_in_the_workers_own_list_is_delivered(make_worker, smtp_server, db):
    """A step that failed half-way (or a reply of Redis that was lost) leaves an id in the
    worker's own list; the next step delivers it, instead of it waiting there forever."""
    with db.transaction() as conn:
        outbox_id = make_outbox(conn)["id"]
    worker = make_worker()
    worker.beat()
    worker.queue.redis.lpush(worker.queue.processing, str(outbox_id))  # not on the queue
    assert worker.step()
    assert outbox_statuses(db) == {outbox_id: "SENT"}
    assert worker.queue.leftovers() == []


def test_one_email_goes_to_the_requester_and_its_cc(make_worker, smtp_server, db):
    """A reply with participants (DESIGN.md section 11) is one email: To the requester, Cc
    the others, one SMTP transaction with a RCPT for each."""
    cc = ["dana@example.org", "Eli@Example.net"]
    with db.transaction() as conn:
        row = make_outbox(conn, to_address="cleo@example.org", cc_addresses=cc)
    worker = make_worker()
    worker.queue.requeue([row["id"]])
    with running(worker):
        [received] = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["cleo@example.org", *cc]
    assert received.message["To"] == "cleo@example.org"
    assert received.message["Cc"] == "dana@example.org, Eli@Example.net"
    wait_until(lambda: outbox_statuses(db) == {row["id"]: "SENT"}, message="SENT")


def test_a_cc_refused_for_good_leaves_the_others_their_email(make_worker, smtp_server, db):
    with db.transaction() as conn:
        row = make_outbox(conn, to_address="cleo@example.org", cc_addresses=["gone@example.org"])
    smtp_server.handler.rcpt_refusals["gone@example.org"] = "550 5.1.1 unknown"
    worker = make_worker()
    worker.queue.requeue([row["id"]])
    with running(worker):
        [received] = smtp_server.wait_for(1)
        wait_until(lambda: outbox_statuses(db) == {row["id"]: "SENT"}, message="SENT")
    assert received.rcpt_tos == ["cleo@example.org"]


def test_a_cc_refused_for_now_retries_the_whole_email_once(make_worker, smtp_server, db):
    """451 for one recipient: nobody gets it yet, and the retry reaches everyone once."""
    with db.transaction() as conn:
        row = make_outbox(conn, to_address="cleo@example.org", cc_addresses=["busy@example.org"])
    smtp_server.handler.rcpt_refusals["busy@example.org"] = "451 4.3.0 try later"
    worker = make_worker()
    worker.queue.requeue([row["id"]])
    with running(worker):
        wait_until(lambda: _row(db, row["id"])["attempts"] >= 1, message="an attempt")
        assert smtp_server.received == []
        del smtp_server.handler.rcpt_refusals["busy@example.org"]
        [received] = smtp_server.wait_for(1)
        wait_until(lambda: outbox_statuses(db) == {row["id"]: "SENT"}, message="SENT")
    assert received.rcpt_tos == ["cleo@example.org", "busy@example.org"]
