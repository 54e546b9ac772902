"""The email worker: takes outbox ids from Redis and delivers them (DESIGN.md section 6).

For each id: claim the row (PENDING or FAILED -> SENDING, one attempt more), send it, then
mark it SENT with an EMAIL_SENT event, or FAILED with a retry due after an exponential,
jittered backoff, or, after the last attempt or a permanent refusal, DEAD with the error
and an EMAIL_FAILED event; only then is the id released from this worker's processing list.
A heartbeat thread keeps the worker alive in Redis even during a long send; every worker
also runs the sweeper now and then (one at a time). SIGTERM finishes the current send and
leaves the rest queued.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg_pool
import redis

from supportdesk.config import Settings
from supportdesk.db import Database, queries
from supportdesk.timeline import record_event
from supportdesk.worker.queue import WorkerQueue
from supportdesk.worker.smtp import (
    DeliveryFailure,
    PermanentFailure,
    SmtpSender,
    build_message,
)
from supportdesk.worker.sweeper import Sweeper

log = logging.getLogger("supportdesk.worker")

_claim = queries.claim_outbox_email
_status = queries.outbox_status
_mark_sent = queries.mark_outbox_sent
_mark_failed = queries.mark_outbox_failed
_mark_dead = queries.mark_outbox_dead

# Errors of a dependency that is down for a while: wait and try again, lose nothing.
OUTAGES = (redis.RedisError, psycopg.OperationalError, psycopg_pool.PoolTimeout)

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Timings:
    """The worker's clock settings (EMAIL_* and WORKER_HEARTBEAT_SECONDS)."""

    retry_base: float = 30
    retry_max: float = 3600
    max_attempts: int = 8
    sweep_every: float = 30
    heartbeat: float = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> Timings:
        return cls(
            settings.email_retry_base_seconds,
            settings.email_retry_max_seconds,
            settings.email_max_attempts,
            settings.email_sweep_seconds,
            settings.worker_heartbeat_seconds,
        )

    def retry_delay(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """After the n-th failed attempt: about base * 2**(n-1), at most max, give or take a
        quarter so that emails failing together do not retry together."""
        delay = min(self.retry_max, self.retry_base * 2 ** max(0, attempts - 1))
        return delay * (0.75 + 0.5 * rand())

    @property
    def poll(self) -> float:
        """How long one wait for work may block: short enough to notice SIGTERM and due
        retries promptly."""
        return max(0.05, min(1.0, self.retry_base / 2, self.heartbeat))


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class EmailWorker:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        sender: SmtpSender,
        *,
        default_from: str,
        timings: Timings = Timings(),
        worker_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.sender = sender
        self.default_from = default_from
        self.timings = timings
        self.worker_id = worker_id or new_worker_id()
        self.clock = clock
        self.queue = WorkerQueue(redis_client, self.worker_id, heartbeat_ttl=3 * timings.heartbeat)
        self.sweeper = Sweeper(db, self.queue, grace=timings.sweep_every, clock=clock)
        self.stopping = threading.Event()
        self._next_sweep = 0.0

    # --- the process ------------------------------------------------------------------------

    def run(self) -> None:
        """Work until `stop()`; the current delivery always finishes first."""
        log.info("worker %s started", self.worker_id)
        beating = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._beat_once()
        beating.start()
        pause = 0.0
        while not self.stopping.is_set():
            if pause:
                self.stopping.wait(pause)
            try:
                self.step()
                pause = 0.0
            except OUTAGES as ex:
                pause = min(10.0, max(0.5, pause * 2))
                log.warning(
                    "worker %s: a dependency is unavailable (%r); again in %.1fs",
                    self.worker_id,
                    ex,
                    pause,
                )
        self.sender.close()
        try:
            self.queue.leave()
        except redis.RedisError as ex:  # its heartbeat expires; the sweeper takes over
            log.warning("worker %s could not deregister: %r", self.worker_id, ex)
        log.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self.stopping.set()

    def step(self) -> bool:
        """One turn: promote due retries, sweep when it is time, deliver one email if one
        arrives within the poll time. True if an email was handled."""
        self.queue.promote_due(time.time())
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.timings.sweep_every
            if self.queue.try_sweep_lock(self.timings.sweep_every):
                self.sweeper.sweep()
        outbox_id = self.queue.take(self.timings.poll)
        if outbox_id is None:
            return False
        self.deliver(outbox_id)
        return True

    def _heartbeat(self) -> None:
        while not self.stopping.wait(self.timings.heartbeat):
            self._beat_once()

    def _beat_once(self) -> None:
        try:
            self.queue.beat()
        except redis.RedisError as ex:
            log.warning("worker %s: heartbeat not written: %r", self.worker_id, ex)

    # --- one email --------------------------------------------------------------------------

    def deliver(self, outbox_id: int) -> None:
        """Claim, send and record one outbox row; the id leaves this worker's list last."""
        try:
            with self.db.transaction() as conn:
                row = _claim(conn, id=outbox_id, now=self.clock())
                status = None if row is not None else _status(conn, id=outbox_id)
        except OUTAGES:
            self.queue.give_back(outbox_id)
            raise
        if row is None:
            log.info("outbox=%s not sent: it is %s (a duplicate id, dropped)", outbox_id, status)
            self.queue.done(outbox_id)
            return
        started = time.monotonic()
        try:
            message = build_message(row, self.default_from)
            self.sender.send(
                message, sender=self._envelope_sender(row), recipient=row["to_address"]
            )
        except DeliveryFailure as failure:
            outcome = self._failed(row, failure)
        else:
            outcome = "sent"
            self._until_recorded(lambda: self._sent(row))
            self.queue.done(outbox_id)
        log.info(
            "delivery outbox=%s ticket=%s attempt=%s outcome=%s duration_ms=%.0f",
            outbox_id,
            row["ticket_id"],
            row["attempts"],
            outcome,
            (time.monotonic() - started) * 1000,
        )

    def _envelope_sender(self, row: Row) -> str:
        """Bounces go to the support address (Reply-To), where inbound mail is read."""
        return row["reply_to"] or self.default_from.rsplit("<", 1)[-1].rstrip(">").strip()

    def _sent(self, row: Row) -> None:
        now = self.clock()
        with self.db.transaction() as conn:
            if _mark_sent(conn, id=row["id"], now=now) is not None and row["ticket_id"]:
                record_event(
                    conn, row["ticket_id"], "EMAIL_SENT", actor=None, now=now, data=_event_data(row)
                )

    def _failed(self, row: Row, failure: DeliveryFailure) -> str:
        error = str(failure)
        final = (
            isinstance(failure, PermanentFailure) or row["attempts"] >= self.timings.max_attempts
        )
        if final:
            self._until_recorded(lambda: self._dead(row, error))
            self.queue.done(row["id"])
            return f"dead ({error})"
        delay = self.timings.retry_delay(row["attempts"])
        due = self.clock() + timedelta(seconds=delay)

        def record() -> None:
            with self.db.transaction() as conn:
                _mark_failed(conn, id=row["id"], error=error, next_attempt_at=due, now=self.clock())

        self._until_recorded(record)
        self.queue.retry_later(row["id"], due.timestamp())
        return f"retry in {delay:.1f}s ({error})"

    def _dead(self, row: Row, error: str) -> None:
        now = self.clock()
        with self.db.transaction() as conn:
            if (
                _mark_dead(conn, id=row["id"], error=error, now=now) is not None
                and row["ticket_id"]
            ):
                record_event(
                    conn,
                    row["ticket_id"],
                    "EMAIL_FAILED",
                    actor=None,
                    now=now,
                    data=_event_data(row) | {"error": error},
                )

    def _until_recorded(self, record: Callable[[], None]) -> None:
        """The attempt happened: keep trying to write its outcome through a database
        outage (else a sent email would be sent again). A SIGTERM meanwhile gives up and
        leaves the id in this worker's list, for the sweeper to hand on."""
        pause = 0.5
        while True:
            try:
                record()
                return
            except OUTAGES as ex:
                if self.stopping.is_set():
                    raise
                log.warning(
                    "worker %s: outcome not recorded yet (%r); again in %.1fs",
                    self.worker_id,
                    ex,
                    pause,
                )
                self.stopping.wait(pause)
                pause = min(10.0, pause * 2)


def _event_data(row: Row) -> dict[str, Any]:
    return {
        "outbox_id": row["id"],
        "kind": row["kind"],
        "to": row["to_address"],
        "subject": row["subject"],
        "message_id": row["message_id"],
        "attempts": row["attempts"],
    }
