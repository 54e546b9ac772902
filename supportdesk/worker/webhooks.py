"""Delivering outgoing webhooks (DESIGN.md section 13) with the email worker's machinery: the
reliable queue (core/reliable_queue.py, keys `sd:webhook:*`), the same loop (`QueueWorker`),
the same sweeper and the same retry settings (EMAIL_RETRY_BASE_SECONDS,
EMAIL_RETRY_MAX_SECONDS, EMAIL_MAX_ATTEMPTS), then DEAD for an ADMIN to retry.

How ids reach the queue: a delivery row is written in its change's transaction together
with a NOTIFY, which PostgreSQL sends once that transaction commits; `DeliveryListener`
(a session of its own on DIRECT_DATABASE_URL, as LISTEN needs) pushes the ids it hears.
Whatever it misses (it was reconnecting, Redis was down) the sweeper re-enqueues.

Each attempt is a POST of the delivery's JSON, signed like our inbound webhook:
`X-Timestamp` (Unix seconds) and `X-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">` under the webhook's own secret. The body is the same at every
attempt (the `id` lets a receiver drop a repeat); the timestamp is the attempt's.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from supportdesk.core.config import Settings
from supportdesk.core.db import Database, queries
from supportdesk.core.reliable_queue import ReliableQueue
from supportdesk.core.signing import WebhookSignature
from supportdesk.mail.mailboxes.secrets import SecretBox, SecretUnreadable
from supportdesk.webhooks.client import AttemptFailed, WebhookClient
from supportdesk.webhooks.queue import CHANNEL, WEBHOOKS, push_after_commit
from supportdesk.worker.delivery import ClaimedRows, Outcome, Timings
from supportdesk.worker.sweeper import Sweeper
from supportdesk.worker.worker import QueueWorker, new_worker_id

log = logging.getLogger("supportdesk.worker.webhooks")

_mark_sent = queries.mark_webhook_sent
_mark_failed = queries.mark_webhook_failed
_mark_dead = queries.mark_webhook_dead

Row = Mapping[str, Any]
USER_AGENT = "SupportDesk-Webhooks/1"


def delivery_body(row: Row) -> bytes:
    """What is POSTed: the same bytes at every attempt of a delivery."""
    document = {"id": row["id"], **row["payload"]}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookDelivery(ClaimedRows):
    """Claims delivery rows, sends each, and records what happened (as `Delivery` does for
    email): SENT on a 2xx; else FAILED with a retry due after the jittered backoff, or DEAD
    after the last attempt."""

    claim_rows = staticmethod(queries.claim_webhook_deliveries)
    row_statuses = staticmethod(queries.webhook_delivery_statuses)
    release_rows = staticmethod(queries.release_webhook_claims)
    noun = "webhook delivery"

    def __init__(
        self,
        db: Database,
        queue: ReliableQueue,
        client: WebhookClient,
        secrets: SecretBox,
        *,
        timings: Timings,
        stopping: threading.Event,
        clock: Callable[[], datetime],
    ):
        self.db = db
        self.queue = queue
        self.client = client
        self.secrets = secrets
        self.timings = timings
        self.stopping = stopping
        self.clock = clock
        self.worker = queue.worker_id

    def deliver(self, row: Row) -> Outcome:
        attempt = row["attempts"] + 1
        started = time.monotonic()
        status: int | None = None
        try:
            answer = self.client.post(row["url"], delivery_body(row), self._headers(row))
        except (AttemptFailed, SecretUnreadable) as failure:
            status = getattr(failure, "status", None)
            outcome, said = self._failed(row, attempt, str(failure), status)
        else:
            status = answer.status
            self._record(lambda: self._sent(row, answer.status))
            outcome, said = Outcome.DONE, "sent"
        log.info(
            "webhook delivery=%s webhook=%s event=%s attempt=%s status=%s outcome=%s "
            "duration_ms=%.0f",
            row["id"],
            row["webhook_id"],
            row["event"],
            attempt,
            status,
            said,
            (time.monotonic() - started) * 1000,
        )
        return outcome

    def wait_recorded(self) -> None:
        """Outcomes are written before `deliver` returns: nothing waits."""

    def close(self) -> None:
        pass

    def _headers(self, row: Row) -> dict[str, str]:
        body = delivery_body(row)
        timestamp = int(self.clock().timestamp())
        signature = WebhookSignature(self.secrets.open(row["secret_encrypted"]), self.clock)
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Timestamp": str(timestamp),
            "X-Signature": signature.sign(timestamp, body),
            "X-Webhook-Event": row["event"],
            "X-Webhook-Delivery": str(row["id"]),
        }

    def _sent(self, row: Row, status: int) -> None:
        with self.db.transaction() as conn:
            _mark_sent(conn, id=row["id"], response_status=status, now=self.clock())

    def _failed(
        self, row: Row, attempt: int, error: str, status: int | None
    ) -> tuple[Outcome, str]:
        error = error[:1000]
        now = self.clock()
        if attempt >= self.timings.max_attempts:

            def dead() -> None:
                with self.db.transaction() as conn:
                    _mark_dead(
                        conn,
                        id=row["id"],
                        worker=self.worker,
                        error=error,
                        response_status=status,
                        now=now,
                    )

            self._record(dead)
            return Outcome.DONE, f"dead ({error})"
        delay = self.timings.retry_delay(attempt)
        due = now + timedelta(seconds=delay)

        def failed() -> None:
            with self.db.transaction() as conn:
                _mark_failed(
                    conn,
                    id=row["id"],
                    worker=self.worker,
                    error=error,
                    response_status=status,
                    next_attempt_at=due,
                    now=now,
                )

        self._record(failed)
        self.queue.retry_later(row["id"], due.timestamp())
        return Outcome.RETRYING, f"retry in {delay:.1f}s ({error})"

    def _record(self, write: Callable[[], None]) -> None:
        """The attempt happened: keep trying to write its outcome through database trouble
        (else a delivered webhook would be sent again); a SIGTERM meanwhile gives up and
        leaves the id in this worker's list for the sweeper."""
        pause = 0.5
        while True:
            try:
                write()
                return
            except psycopg.Error as ex:
                if self.stopping.is_set():
                    raise
                log.warning("webhook outcome not recorded yet (%r); again in %.1fs", ex, pause)
                self.stopping.wait(pause)
                pause = min(10.0, pause * 2)


class WebhookWorker(QueueWorker):
    """One worker of the webhooks' queue: the same loop as the email worker's."""

    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        client: WebhookClient,
        secrets: SecretBox,
        *,
        timings: Timings | None = None,
        worker_id: str | None = None,
        batch: int = 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        timings = timings or Timings()
        queue = ReliableQueue(
            redis_client,
            WEBHOOKS,
            worker_id or new_worker_id(),
            heartbeat_ttl=3 * timings.heartbeat,
        )
        stopping = threading.Event()
        super().__init__(
            db,
            queue,
            Sweeper(
                db,
                queue,
                grace=timings.sweep_every,
                clock=clock,
                reset_claims=queries.reset_webhook_claims_of_dead_workers,
                undelivered_not_held=queries.webhook_deliveries_not_held,
                what="webhook delivery",
            ),
            WebhookDelivery(
                db, queue, client, secrets, timings=timings, stopping=stopping, clock=clock
            ),
            timings=timings,
            stopping=stopping,
            batch=batch,
        )


class DeliveryListener:
    """LISTENs for committed deliveries and pushes their ids onto the queue. Every worker
    process listens; a NOTIFY reaches each, so one id may be queued once per worker: the
    row's claim lets only the first send it (the others find it SENDING or SENT)."""

    def __init__(self, conninfo: str, redis_client: redis.Redis, *, poll: float = 1.0):
        self.conninfo = conninfo
        self.redis = redis_client
        self.poll = poll
        self.stopping = threading.Event()

    def run(self) -> None:
        pause = 0.5
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    pause = 0.5
                    while not self.stopping.is_set():
                        # Back as soon as a packet of notifications came (stop_after):
                        # `poll` bounds the wait for `stopping`, it is not a batching window.
                        notes = conn.notifies(timeout=self.poll, stop_after=1)
                        ids = [int(n.payload) for n in notes]
                        if ids:
                            push_after_commit(self.redis, ids)
            except psycopg.Error as ex:  # the sweeper covers what is missed meanwhile
                log.warning("webhook listener: %r; again in %.1fs", ex, pause)
                self.stopping.wait(pause)
                pause = min(10.0, pause * 2)

    def stop(self) -> None:
        self.stopping.set()


def webhook_client(settings: Settings, **overrides: Any) -> WebhookClient:
    """The client of the settings (WEBHOOK_TIMEOUT_SECONDS, WEBHOOK_MAX_RESPONSE_BYTES,
    WEBHOOK_ALLOW_PRIVATE)."""
    options: dict[str, Any] = {
        "timeout": settings.webhook_timeout_seconds,
        "max_response_bytes": settings.webhook_max_response_bytes,
        "allow_private": settings.webhook_allow_private,
    }
    return WebhookClient(**(options | overrides))
