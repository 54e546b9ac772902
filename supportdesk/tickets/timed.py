"""Time (DESIGN.md section 12): what the scheduler does to tickets as time passes.

- A RESOLVED ticket with no activity (`updated_at`) for AUTO_CLOSE_AFTER becomes CLOSED, with
  an AUTO_CLOSED event and a notice to its customer (To the requester, Cc the participants,
  From the ticket's mailbox, threaded under the conversation): a reply to it opens a new
  ticket that links this one (section 6).
- A WAITING ticket whose `waiting_until` has come returns to OPEN, with a STATUS_CHANGED
  event that says why, and waits no more.

Each job is idempotent, so that a run cut short, or two hosts at once, change nothing twice:
it lists a bounded batch of candidates, then changes each in a short transaction of its own
after locking the ticket's row (`FOR UPDATE`) and checking again that it still qualifies (a
customer may have written, or staff reopened it, since the list was read). A batch left
full is continued at the next run. The scheduler (supportdesk/worker/scheduler.py) runs
these under its advisory lock; `timed_jobs` names them for its registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis

from supportdesk.core.db import Database, queries
from supportdesk.mail.outbound.compose import EmailComposer
from supportdesk.mail.outbound.outbox import push_after_commit, queue_email, thread_message_ids
from supportdesk.tickets.participants import participants
from supportdesk.tickets.timeline import record_event

_stale_resolved_ticket_ids = queries.stale_resolved_ticket_ids
_waited_ticket_ids = queries.waited_ticket_ids
_lock_ticket_by_id = queries.lock_ticket_by_id
_resolved_since = queries.resolved_since
_set_ticket_fields = queries.set_ticket_fields

Row = Mapping[str, Any]
log = logging.getLogger("supportdesk.tickets.timed")

# How many tickets one job changes in one run, at most: a run stays short (and the lock
# with it); the rest are changed at the next run.
BATCH = 200


class TimedTickets:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        composer: EmailComposer,
        *,
        auto_close_after: timedelta | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = BATCH,
    ):
        self.db = db
        self.redis = redis_client
        self.composer = composer
        self.auto_close_after = auto_close_after
        self.clock = clock
        self.batch = batch

    # --- AUTO_CLOSE_AFTER ----------------------------------------------------------------

    def close_stale_resolved(self) -> int:
        """Close the RESOLVED tickets quiet for AUTO_CLOSE_AFTER (none when it is 0);
        returns how many this run closed."""
        if not self.auto_close_after:
            return 0
        cutoff = self.clock() - self.auto_close_after
        with self.db.transaction() as conn:
            rows = _stale_resolved_ticket_ids(conn, cutoff=cutoff, batch=self.batch)
        ids = [row["id"] for row in rows]
        return sum(self._close_one(ticket_id, cutoff) for ticket_id in ids)

    def _close_one(self, ticket_id: int, cutoff: datetime) -> bool:
        """One ticket, in its own transaction, checked again under its row lock."""
        with self.db.transaction() as conn:
            ticket = _lock_ticket_by_id(conn, id=ticket_id)
            if ticket is None or ticket["status"] != "RESOLVED" or ticket["updated_at"] > cutoff:
                return False  # changed since it was listed: someone wrote, or another host ran
            now = self.clock()
            since = _resolved_since(conn, ticket_id=ticket_id) or ticket["updated_at"]
            closed = _set_ticket_fields(
                conn,
                id=ticket_id,
                now=now,
                status="CLOSED",
                priority=ticket["priority"],
                assigned_to=ticket["assigned_to"],
            )
            record_event(
                conn,
                ticket_id,
                "AUTO_CLOSED",
                actor=None,
                now=now,
                data={
                    "from": "RESOLVED",
                    "to": "CLOSED",
                    "resolved_since": since.isoformat(),
                    "inactive_seconds": int((now - ticket["updated_at"]).total_seconds()),
                },
            )
            outbox_id = self._close_notice(conn, closed, since, now)
        self.db.after_commit(push_after_commit, self.redis, [outbox_id])
        log.info("ticket %s closed: resolved since %s", closed["pid"], since.isoformat())
        return True

    def _close_notice(
        self, conn: psycopg.Connection, ticket: Row, since: datetime, now: datetime
    ) -> int:
        """The customer's notice, To the requester and Cc the participants (who were in the
        conversation), queued in the closing transaction."""
        email = self.composer.close_notice(
            ticket,
            thread_message_ids(conn, ticket["id"]),
            [p["email"] for p in participants(conn, ticket["id"])],
            since,
        )
        return queue_email(
            conn, email, ticket_id=ticket["id"], ticket_mailbox_id=ticket["mailbox_id"], now=now
        )

    # --- waiting_until -------------------------------------------------------------------

    def reopen_waited(self) -> int:
        """Return to OPEN the WAITING tickets whose `waiting_until` has come; how many."""
        now = self.clock()
        with self.db.transaction() as conn:
            ids = [row["id"] for row in _waited_ticket_ids(conn, now=now, batch=self.batch)]
        return sum(self._reopen_one(ticket_id, now) for ticket_id in ids)

    def _reopen_one(self, ticket_id: int, due: datetime) -> bool:
        with self.db.transaction() as conn:
            ticket = _lock_ticket_by_id(conn, id=ticket_id)
            if ticket is None or ticket["waiting_until"] is None or ticket["waiting_until"] > due:
                return False  # staff changed it since it was listed, or another host ran
            now = self.clock()
            # The event says why (actor None: nobody did it), and set_ticket_fields clears
            # `waiting_until` with the status.
            _set_ticket_fields(
                conn,
                id=ticket_id,
                now=now,
                status="OPEN",
                priority=ticket["priority"],
                assigned_to=ticket["assigned_to"],
            )
            record_event(
                conn,
                ticket_id,
                "STATUS_CHANGED",
                actor=None,
                now=now,
                data={
                    "from": ticket["status"],
                    "to": "OPEN",
                    "reason": "waiting_until",
                    "waiting_until": ticket["waiting_until"].isoformat(),
                },
            )
        log.info("ticket %s waited until %s: OPEN again", ticket["pid"], ticket["waiting_until"])
        return True


def timed_jobs(timed: TimedTickets) -> dict[str, Callable[[], int]]:
    """The scheduler's jobs about tickets, by name (its registry: supportdesk/worker)."""
    return {
        "auto_close": timed.close_stale_resolved,
        "waiting_until": timed.reopen_waited,
    }
