"""What a worker's claim takes: only rows still to be sent (sql/outbox.sql,
claim_outbox_emails), so that an id queued twice neither sends twice nor holds up the
other emails of its batch."""

from __future__ import annotations

from datetime import UTC, datetime

from supportdesk.mail.outbound.queue import EMAIL_QUEUE
from tests.factories import make_outbox
from tests.worker.conftest import outbox_statuses, running, wait_until


def test_a_sent_email_queued_again_is_not_resent_and_holds_up_nothing(
    make_worker, smtp_server, db, redis_client
):
    """Issue 18's mutation audit: a claim that also took SENT rows passed the suite. The
    database refuses to make a SENT row SENDING again (its sent_at), so such a claim fails
    whole, and the worker retries that batch forever: the fresh email beside the stale
    id is never sent. Here it arrives within seconds, and the SENT one does not again."""
    with db.transaction() as conn:
        sent = make_outbox(conn, status="SENT", attempts=1, sent_at=datetime.now(UTC))
        fresh = make_outbox(conn)
    worker = make_worker()
    worker.queue.requeue([sent["id"], fresh["id"]])  # waiting together: one batch
    with running(worker):
        [received] = smtp_server.wait_for(1, timeout=10)
        wait_until(
            lambda: redis_client.llen(worker.queue.processing) == 0,
            message="the batch finished",
        )
    assert received.message_id == fresh["message_id"]
    assert [r.message_id for r in smtp_server.received] == [fresh["message_id"]]
    assert outbox_statuses(db) == {sent["id"]: "SENT", fresh["id"]: "SENT"}
    assert redis_client.llen(EMAIL_QUEUE) == 0
