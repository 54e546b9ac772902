"""The queue workers: take row ids from a reliable queue in Redis and hand them to a delivery
(`Delivery` for the email outbox; worker/webhooks.py's for outgoing webhooks).

Each turn: due retries go back onto the queue, the sweeper runs when it is time (one
worker at a time), then up to `batch` ids move into this worker's processing list
(BLMOVE), their rows are claimed together, and they are delivered one by one. An id leaves
the list only once its outcome is recorded. A heartbeat thread keeps the worker alive in
Redis even during a long send; SIGTERM finishes the current send and puts the rest back.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
import redis

from supportdesk.core.db import Database
from supportdesk.core.reliable_queue import ReliableQueue
from supportdesk.files.storage import Storage
from supportdesk.mail.outbound.attached import AttachmentReader
from supportdesk.mail.outbound.queue import WorkerQueue
from supportdesk.mail.outbound.sender import SmtpSender
from supportdesk.mail.outbound.smtp_routes import SmtpRoutes
from supportdesk.worker.delivery import Delivery, Outcome, Timings
from supportdesk.worker.sweeper import Sweeper

log = logging.getLogger("supportdesk.worker")

# Errors of a dependency that is down for a while: wait and try again, lose nothing.
OUTAGES = (redis.RedisError, psycopg.Error)
# Longest pause after the mail server could not be reached at all.
MAX_UNREACHABLE_PAUSE = 60.0


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RowDelivery(Protocol):
    """What the loop hands ids to: claims their rows, delivers one, records its outcome."""

    def claim(self, ids: list[int]) -> tuple[list[Mapping[str, Any]], list[int]]: ...
    def deliver(self, row: Mapping[str, Any]) -> Outcome: ...
    def release(self, ids: list[int]) -> None: ...
    def wait_recorded(self) -> None: ...
    def close(self) -> None: ...


class QueueWorker:
    """The loop every reliable queue's worker runs (core/reliable_queue.py): its heartbeat,
    due retries, the sweeper, and rows handed to `delivery` (a `Delivery` for email, a
    `WebhookDelivery` for webhooks: `claim`, `deliver`, `release`, `wait_recorded`, `close`)."""

    def __init__(
        self,
        db: Database,
        queue: ReliableQueue,
        sweeper: Sweeper,
        delivery: RowDelivery,
        *,
        timings: Timings,
        stopping: threading.Event,
        batch: int = 20,
    ):
        self.db = db
        self.queue = queue
        self.sweeper = sweeper
        self.delivery = delivery
        self.timings = timings
        self.worker_id = queue.worker_id
        self.stopping = stopping
        # Ids taken (and rows claimed) together: fewer round trips per row. Each row's
        # outcome is recorded before the next is sent, so a crash resends at most the one
        # that was in flight.
        self.batch = batch
        self._stop_beating = threading.Event()  # set only after the worker has left
        self._last_beat = 0.0
        self._next_sweep = 0.0
        self._next_promotion = 0.0
        self._unreachable_pause = 0.0

    def close(self) -> None:
        """What the worker holds besides its delivery (closed when it stops)."""

    # --- the process ------------------------------------------------------------------------

    def run(self) -> None:
        """Work until `stop()`; the current delivery always finishes first."""
        log.info("worker %s started", self.worker_id)
        self._beat_once()
        self._stop_beating.clear()
        beating = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        beating.start()
        pause = 0.0
        while not self.stopping.is_set():
            if pause:
                self.stopping.wait(pause)
            try:
                self.step()
                pause = self._unreachable_pause
            except OUTAGES as ex:
                pause = min(10.0, max(0.5, pause * 2))
                log.warning(
                    "worker %s: a dependency is unavailable (%r); again in %.1fs",
                    self.worker_id,
                    ex,
                    pause,
                )
            except Exception:  # a bug must not stop delivery: its ids stay in our list
                pause = min(10.0, max(0.5, pause * 2))
                log.exception("worker %s: unexpected error; again in %.1fs", self.worker_id, pause)
        # The heartbeat lasted through the last send (a send finishing after SIGTERM is
        # still a live worker's); it stops before leaving, so it cannot register us again.
        self._stop_beating.set()
        beating.join()
        self.delivery.close()
        self.close()
        try:
            self.delivery.release(self.queue.leftovers())  # normally nothing
            self.queue.leave()
        except OUTAGES as ex:  # its heartbeat expires; the sweeper takes over
            log.warning("worker %s could not deregister: %r", self.worker_id, ex)
        log.info("worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self.stopping.set()

    def step(self) -> bool:
        """One turn: promote due retries, sweep when it is time, deliver what this worker
        still holds or what arrives within the poll time. True if any email was handled."""
        if time.monotonic() >= self._next_promotion:
            self._next_promotion = time.monotonic() + self.timings.poll
            self.queue.promote_due(time.time())
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + self.timings.sweep_every
            # The lock outlives the sweep's own schedule, so sweeps never overlap.
            if self.queue.try_sweep_lock(3 * self.timings.sweep_every):
                self.sweeper.sweep()
        taken = self.queue.leftovers() or self.queue.take(self.timings.poll, limit=self.batch)
        if not taken:
            return False
        self.deliver(taken)
        return True

    def deliver(self, outbox_ids: list[int]) -> None:
        """Claim the rows of these ids, then deliver them one by one. Ids leave this
        worker's list last, so a failure half-way leaves them for the next turn."""
        rows, finished = self.delivery.claim(outbox_ids)
        try:
            for index, row in enumerate(rows):
                if self.stopping.is_set() or not self._surely_alive():
                    # Stopping, or possibly declared dead by a sweeper (our heartbeat has
                    # not been written for a while): attempt nothing more of this batch.
                    self.delivery.release([r["id"] for r in rows[index:]])
                    break
                outcome = self.delivery.deliver(row)
                if outcome is not Outcome.UNREACHABLE:
                    self._unreachable_pause = 0.0
                if outcome is Outcome.DONE:
                    finished.append(row["id"])
                elif outcome is Outcome.UNREACHABLE:
                    # The next ones would fail alike: they wait, and so does this worker.
                    self.delivery.release([r["id"] for r in rows[index + 1 :]])
                    self._unreachable_pause = self._next_unreachable_pause()
                    break
        finally:
            self.delivery.wait_recorded()  # outcomes first, then the ids go
            self.queue.done(finished)

    def _next_unreachable_pause(self) -> float:
        base = max(self.timings.poll, self.timings.retry_base / 4)
        return min(MAX_UNREACHABLE_PAUSE, max(base, 2 * self._unreachable_pause))

    # --- the heartbeat ------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        while not self._stop_beating.wait(self.timings.heartbeat):
            self._beat_once()

    def beat(self) -> None:
        """Write the heartbeat now (`run` does, then keeps doing it in a thread)."""
        self._beat_once()

    def _beat_once(self) -> None:
        try:
            self.queue.beat()
            self._last_beat = time.monotonic()
        except redis.RedisError as ex:
            log.warning("worker %s: heartbeat not written: %r", self.worker_id, ex)

    def _surely_alive(self) -> bool:
        """Our last heartbeat is recent enough that no sweeper can have declared us dead."""
        return time.monotonic() - self._last_beat < 2.5 * self.timings.heartbeat


class EmailWorker(QueueWorker):
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        sender: SmtpSender,
        *,
        default_from: str,
        bounce_address: str,
        timings: Timings | None = None,
        worker_id: str | None = None,
        batch: int = 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        routes: SmtpRoutes | None = None,
        storage: Storage | Callable[[], Storage] | None = None,
    ):
        """`routes`: where a company mailbox's emails go (smtp_routes); without it every
        email goes through `sender`. `storage` (or what makes it, on first use): where the
        files of replies are read from."""
        timings = timings or Timings()
        self.sender = sender
        queue = WorkerQueue(
            redis_client, worker_id or new_worker_id(), heartbeat_ttl=3 * timings.heartbeat
        )
        stopping = threading.Event()
        super().__init__(
            db,
            queue,
            Sweeper(db, queue, grace=timings.sweep_every, clock=clock),
            Delivery(
                db,
                queue,
                sender,
                default_from=default_from,
                bounce_address=bounce_address,
                timings=timings,
                stopping=stopping,
                clock=clock,
                routes=routes,
                files=AttachmentReader(storage),
            ),
            timings=timings,
            stopping=stopping,
            batch=batch,
        )

    def close(self) -> None:
        self.sender.close()
