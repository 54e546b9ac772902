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

from supportdesk.core.db import Database, Query, queries
from supportdesk.core.reliable_queue import ReliableQueue

log = logging.getLogger("supportdesk.worker.sweeper")

_reset_claims = queries.reset_claims_of_dead_workers
_undelivered_not_held = queries.undelivered_not_held

BATCH = 1000


class Sweeper:
    """The sweeper of one reliable queue: the email outbox's by default; the outgoing
    webhooks' deliveries (worker/webhooks.py) pass their table's two queries and `what`
    names their rows in the log."""

    def __init__(
        self,
        db: Database,
        queue: ReliableQueue,
        *,
        grace: float,
        clock: Callable[[], datetime],
        reset_claims: Query = _reset_claims,
        undelivered_not_held: Query = _undelivered_not_held,
        what: str = "outbox",
    ):
        self.db = db
        self.queue = queue
        self.grace = timedelta(seconds=grace)
        self.clock = clock
        self._reset_claims = reset_claims
        self._undelivered_not_held = undelivered_not_held
        self.what = what

    def sweep(self) -> dict[str, int]:
        """One pass; returns how many ids each job put back (for tests and the log)."""
        counts = {"reclaimed": self.reclaim_dead_workers(), "requeued": self.requeue_lost()}
        if any(counts.values()):
            log.info("sweep by %s: %s", self.queue.worker_id, counts)
        return counts

    def reclaim_dead_workers(self) -> int:
        silent = [w for w in self.queue.silent_workers() if w != self.queue.worker_id]
        if not silent:
            return 0
        now = self.clock()
        # Rows first, then the ids: a worker taking an id must find its row takeable.
        with self.db.transaction() as conn:
            reset = self._reset_claims(conn, dead=silent, ids=[], alive=[], before=now, now=now)
        self._log_reset(reset)
        moved = 0
        for worker in silent:
            released = self.queue.release_dead(worker)
            if released is None:
                log.warning("worker %s answered again; its list stays with it", worker)
                continue
            log.warning(
                "worker %s is gone: %d %s id(s) back in the queue", worker, len(released), self.what
            )
            moved += len(released)
        return moved

    def requeue_lost(self) -> int:
        now = self.clock()
        held = self.queue.held_ids()
        alive = self.queue.live_workers()
        with self.db.transaction() as conn:
            lost = self._undelivered_not_held(
                conn, before=now - self.grace, held=sorted(held), limit=BATCH
            )
            # A SENDING row no list holds is handed on only if its worker is gone.
            sending = [row["id"] for row in lost if row["status"] == "SENDING"]
            reset = (
                self._reset_claims(
                    conn, dead=[], ids=sending, alive=alive, before=now - self.grace, now=now
                )
                if sending
                else []
            )
        self._log_reset(reset)
        retries = {
            row["id"]: row["next_attempt_at"].timestamp()
            for row in lost
            if row["status"] == "FAILED"
        }
        waiting = [row["id"] for row in lost if row["status"] == "PENDING"]
        waiting += [row["id"] for row in reset]
        self.queue.schedule(retries)
        self.queue.requeue(waiting)
        for row in lost:
            if row["status"] != "SENDING":
                log.warning(
                    "%s=%s ticket=%s (%s) was in no queue: put back",
                    self.what,
                    row["id"],
                    row["ticket_id"],
                    row["status"],
                )
        return len(retries) + len(waiting)

    def _log_reset(self, rows: list) -> None:
        for row in rows:
            log.warning(
                "%s=%s ticket=%s was taken by worker %s, which stopped without finishing: "
                "it is sent again, and if that worker's attempt had reached its recipient "
                "the recipient may receive it twice",
                self.what,
                row["id"],
                row["ticket_id"],
                row["claimed_by"],
            )
