"""The sweeper: what Redis lost or a dead worker dropped goes back into the queue.

Two jobs, run by one worker at a time every EMAIL_SWEEP_SECONDS:

1. A worker whose heartbeat expired (three beats missed: killed, frozen, its host gone) has
   its processing list moved back onto the queue, after its rows are set back from SENDING
   to PENDING. A worker still beating is never touched, however long its send takes. The
   email it was sending may have gone out before it died: it is sent again (at-least-once
   delivery, with the same Message-ID) and the log says so.
2. Undelivered rows that no Redis structure holds (Redis was down when they were written,
   or was flushed) are put back: PENDING ones on the queue, FAILED ones in the retry set at
   their due time, SENDING ones (their worker and its list are gone) reset and queued.
   Rows touched within the last `grace` seconds are left alone: their writer may be about
   to push them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from supportdesk.db import Database, queries
from supportdesk.worker.queue import WorkerQueue

log = logging.getLogger("supportdesk.worker.sweeper")

_reset_interrupted = queries.reset_interrupted_outbox
_undelivered_not_held = queries.undelivered_not_held

BATCH = 1000


class Sweeper:
    def __init__(
        self, db: Database, queue: WorkerQueue, *, grace: float, clock: Callable[[], datetime]
    ):
        self.db = db
        self.queue = queue
        self.grace = timedelta(seconds=grace)
        self.clock = clock

    def sweep(self) -> dict[str, int]:
        """One pass; returns how many ids each job put back (for tests and the log)."""
        counts = {"reclaimed": self.reclaim_dead_workers(), "requeued": self.requeue_lost()}
        if any(counts.values()):
            log.info("sweep by %s: %s", self.queue.worker_id, counts)
        return counts

    def reclaim_dead_workers(self) -> int:
        moved = 0
        for worker in self.queue.silent_workers():
            if worker == self.queue.worker_id:
                continue  # our own heartbeat lapsed (Redis hiccup); we are plainly alive
            in_flight = self.queue.in_flight(worker)
            # Rows first, then the ids: a worker taking an id must find its row takeable.
            with self.db.transaction() as conn:
                interrupted = _reset_interrupted(conn, ids=in_flight, now=self.clock())
            released = self.queue.release_dead(worker)
            if released is None:
                log.warning("worker %s answered again; its emails stay with it", worker)
                continue
            for row in interrupted:
                log.warning(
                    "outbox=%s ticket=%s was being sent by worker %s, which stopped without "
                    "finishing (attempt %s): it will be sent again, and the recipient may "
                    "receive it twice",
                    row["id"],
                    row["ticket_id"],
                    worker,
                    row["attempts"],
                )
            log.warning("worker %s is gone: %d email(s) back in the queue", worker, len(released))
            moved += len(released)
        return moved

    def requeue_lost(self) -> int:
        now = self.clock()
        held = self.queue.held_ids()
        with self.db.transaction() as conn:
            lost = _undelivered_not_held(
                conn, before=now - self.grace, held=sorted(held), limit=BATCH
            )
            sending = [row["id"] for row in lost if row["status"] == "SENDING"]
            if sending:
                _reset_interrupted(conn, ids=sending, now=now)
        retries = {
            row["id"]: row["next_attempt_at"].timestamp()
            for row in lost
            if row["status"] == "FAILED"
        }
        waiting = [row["id"] for row in lost if row["status"] != "FAILED"]
        self.queue.schedule(retries)
        self.queue.requeue(waiting)
        for row in lost:
            log.warning(
                "outbox=%s ticket=%s (%s) was in no queue: put back%s",
                row["id"],
                row["ticket_id"],
                row["status"],
                " (its last attempt may have been delivered)" if row["status"] == "SENDING" else "",
            )
        return len(lost)
