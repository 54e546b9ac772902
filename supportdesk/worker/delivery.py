"""Delivering claimed outbox rows, one at a time, and recording what happened to each.

A claim (PENDING, or FAILED and due, -> SENDING, claimed_by this worker) is taken for a few
rows at once; then each row is sent and its outcome recorded before the next is sent:
SENT with an EMAIL_SENT event; FAILED with a retry due after an exponential, jittered
backoff; or DEAD with the error and an EMAIL_FAILED event after the last attempt or a
permanent refusal. A mail server that cannot be reached at all does not use up an
attempt: the email waits, and the worker pauses, until the server answers again.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from supportdesk.core.config import Settings
from supportdesk.core.db import Database, queries
from supportdesk.mail.outbound.attached import AttachmentReader
from supportdesk.mail.outbound.queue import WorkerQueue
from supportdesk.mail.outbound.sender import (
    DeliveryFailure,
    PermanentFailure,
    SessionFailure,
    SmtpSender,
    wire_bytes,
)
from supportdesk.mail.outbound.smtp_routes import SmtpRoutes
from supportdesk.tickets.timeline import record_event

log = logging.getLogger("supportdesk.worker")

_mark_sent = queries.mark_outbox_sent
_mark_failed = queries.mark_outbox_failed
_mark_dead = queries.mark_outbox_dead

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


class Outcome(enum.Enum):
    DONE = "done"  # sent, or dead: the id is finished with
    RETRYING = "retrying"  # in the retry set
    UNREACHABLE = "unreachable"  # in the retry set, and the mail server cannot be reached


class ClaimedRows:
    """Claiming rows for this worker and giving back the ones it did not attempt: the part
    of a RowDelivery (worker/worker.py) that email and webhooks share, over their own
    queries. A subclass names them (`claim_rows`, `row_statuses`, `release_rows`) and what
    its rows are called in the log (`noun`); it sets `db`, `queue`, `worker` and `clock`."""

    claim_rows: Callable[..., list[Row]]
    row_statuses: Callable[..., list[Row]]
    release_rows: Callable[..., int]
    noun: str
    db: Database
    queue: Any  # a ReliableQueue, or email's WorkerQueue around one
    worker: str
    clock: Callable[[], datetime]

    def claim(self, ids: list[int]) -> tuple[list[Row], list[int]]:
        """(the rows claimed, in id order; the ids that are not for sending now)."""
        with self.db.transaction() as conn:
            rows = self.claim_rows(conn, ids=ids, worker=self.worker, now=self.clock())
            claimed = {row["id"] for row in rows}
            others = [i for i in ids if i not in claimed]
            for row in self.row_statuses(conn, ids=others) if others else []:
                log.info("%s=%s not sent now: it is %s", self.noun, row["id"], row["status"])
        return sorted(rows, key=lambda r: r["id"]), others

    def release(self, ids: list[int]) -> None:
        """Rows claimed but not attempted wait again, at the front of the queue."""
        if ids:
            with self.db.transaction() as conn:
                self.release_rows(conn, ids=ids, worker=self.worker, now=self.clock())
            self.queue.give_back(ids)


class Delivery(ClaimedRows):
    claim_rows = staticmethod(queries.claim_outbox_emails)
    row_statuses = staticmethod(queries.outbox_statuses)
    release_rows = staticmethod(queries.release_claims)
    noun = "outbox"

    def __init__(
        self,
        db: Database,
        queue: WorkerQueue,
        sender: SmtpSender,
        *,
        default_from: str,
        bounce_address: str,
        timings: Timings,
        stopping: threading.Event,
        clock: Callable[[], datetime],
        routes: SmtpRoutes | None = None,
        files: AttachmentReader | None = None,
    ):
        self.db = db
        self.queue = queue
        self.sender = sender
        # Rows written From a company mailbox may go through its own server (section 10).
        self.routes = routes or SmtpRoutes(db, sender)
        self.default_from = default_from
        # Where a reply's attachments are read from, at each attempt (attached.py).
        self.files = files or AttachmentReader(None)
        # Bounces go to the row's Reply-To, else to this (the support address): where
        # inbound mail is read.
        self.bounce_address = bounce_address
        self.timings = timings
        self.stopping = stopping
        self.clock = clock
        self.worker = queue.worker_id
        # A sent email's outcome is written here while the next email travels; it must be
        # written before that next one's final "." (see `deliver`).
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")
        self._recording: Future[None] | None = None

    def deliver(self, row: Row) -> Outcome:
        """Send one claimed row and record the outcome, with one log line.

        A success is recorded in the background while the next email is sent, but always
        before the mail server is told to take that next one: if the worker dies, at most
        one email (the one at the server) was delivered without its outcome recorded. Call
        `wait_recorded` before releasing the ids of what was sent.
        """
        attempt = row["attempts"] + 1
        started = time.monotonic()
        sender = self.routes.sender_for(row)
        try:
            refused = sender.send(
                wire_bytes(row, self.default_from, self.files.read(row)),
                row["reply_to"] or self.bounce_address,
                [row["to_address"], *(row.get("cc_addresses") or ())],
                before_commit=self.wait_recorded,
            )
        except DeliveryFailure as failure:
            self.wait_recorded()
            outcome, said = self._failed(row, attempt, failure, sender is self.routes.global_sender)
        else:
            self._recording = self._recorder.submit(
                self._until_recorded, lambda: self._sent(row, attempt)
            )
            outcome, said = Outcome.DONE, "sent"
            if refused:  # the others have it; these never will (5xx): said in the log
                said = "sent, refused for " + "; ".join(f"{a}: {r}" for a, r in refused.items())
        log.info(
            "delivery outbox=%s ticket=%s attempt=%s outcome=%s duration_ms=%.0f",
            row["id"],
            row["ticket_id"],
            attempt,
            said,
            (time.monotonic() - started) * 1000,
        )
        return outcome

    def wait_recorded(self) -> None:
        """Until the last sent email's outcome is written (re-raising its failure)."""
        recording, self._recording = self._recording, None
        if recording is not None:
            recording.result()

    def close(self) -> None:
        self._recorder.shutdown(wait=True)
        self.routes.close()

    def _sent(self, row: Row, attempt: int) -> None:
        now = self.clock()
        with self.db.transaction() as conn:
            if _mark_sent(conn, id=row["id"], now=now) is not None and row["ticket_id"]:
                record_event(
                    conn,
                    row["ticket_id"],
                    "EMAIL_SENT",
                    actor=None,
                    now=now,
                    data=_event_data(row, attempt),
                )

    def _failed(
        self, row: Row, attempt: int, failure: DeliveryFailure, global_route: bool = True
    ) -> tuple[Outcome, str]:
        """Record a failed attempt. A session that could not be had uses up no attempt; on
        the global route it also pauses the worker (UNREACHABLE), while a company mailbox's
        server, or a mailbox to connect again, holds back that mailbox's emails only."""
        error = str(failure)
        counted = not isinstance(failure, SessionFailure)
        if counted and (
            isinstance(failure, PermanentFailure) or attempt >= self.timings.max_attempts
        ):
            self._until_recorded(lambda: self._dead(row, attempt, error))
            return Outcome.DONE, f"dead ({error})"
        delay = self.timings.retry_delay(attempt if counted else row["attempts"] + 1)
        due = self.clock() + timedelta(seconds=delay)

        def record() -> None:
            with self.db.transaction() as conn:
                _mark_failed(
                    conn,
                    id=row["id"],
                    worker=self.worker,
                    counted=counted,
                    error=error,
                    next_attempt_at=due,
                    now=self.clock(),
                )

        self._until_recorded(record)
        self.queue.retry_later(row["id"], due.timestamp())
        if not counted and not global_route:
            return Outcome.RETRYING, f"mailbox unavailable, retry in {delay:.1f}s ({error})"
        if not counted:
            return Outcome.UNREACHABLE, f"mail server unreachable, retry in {delay:.1f}s ({error})"
        return Outcome.RETRYING, f"retry in {delay:.1f}s ({error})"

    def _dead(self, row: Row, attempt: int, error: str) -> None:
        now = self.clock()
        with self.db.transaction() as conn:
            marked = _mark_dead(conn, id=row["id"], worker=self.worker, error=error, now=now)
            if marked is not None and row["ticket_id"]:
                record_event(
                    conn,
                    row["ticket_id"],
                    "EMAIL_FAILED",
                    actor=None,
                    now=now,
                    data=_event_data(row, attempt) | {"error": error},
                )

    def _until_recorded(self, record: Callable[[], None]) -> None:
        """The attempt happened: keep trying to write its outcome through any database
        trouble (else a sent email would be sent again). A SIGTERM meanwhile gives up and
        leaves the id in this worker's list, for the sweeper to hand on."""
        pause = 0.5
        while True:
            try:
                record()
                return
            except psycopg.Error as ex:  # also PoolTimeout; a read-only failover, say
                if self.stopping.is_set():
                    raise
                log.warning(
                    "worker %s: outcome not recorded yet (%r); again in %.1fs",
                    self.worker,
                    ex,
                    pause,
                )
                self.stopping.wait(pause)
                pause = min(10.0, pause * 2)


def _event_data(row: Row, attempt: int) -> dict[str, Any]:
    return {
        "outbox_id": row["id"],
        "kind": row["kind"],
        "to": row["to_address"],
        "subject": row["subject"],
        "message_id": row["message_id"],
        "attempts": attempt,
    }
