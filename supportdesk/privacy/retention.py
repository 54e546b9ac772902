"""RETENTION_AFTER (DESIGN.md section 13): CLOSED tickets last changed longer ago than that
are purged by the scheduler, with their messages, timeline, files, outbox rows, participants
and followers.

The deleting is `privacy_purge_closed_tickets` (migration 0017), run as the schema's owner
through SECURITY DEFINER, a batch at a time, each batch in one transaction with its
TICKETS_PURGED audit row (a count, no ticket's content). The files' bytes go after each
commit (privacy/files.py). A run that finds nothing due changes nothing and records nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from supportdesk.accounts.audit import SYSTEM, record
from supportdesk.core.db import Database, queries
from supportdesk.files.storage import Storage
from supportdesk.privacy.files import remove_pending_files

_purge_closed_tickets = queries.purge_closed_tickets

BATCH = 200
# The database function refuses anything newer: the app role may call it, and must not be
# able to empty the desk of recent work with it. A shorter RETENTION_AFTER acts as a day.
SHORTEST = timedelta(days=1)


class RetentionPurge:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        retention_after: timedelta | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = BATCH,
    ):
        self.db = db
        self.storage = storage
        self.retention_after = retention_after
        self.clock = clock
        self.batch = batch

    def purge(self) -> int:
        """Purge every CLOSED ticket due; returns how many (0 with RETENTION_AFTER unset).
        Files left queued by an earlier crash are removed here too."""
        remove_pending_files(self.db, self.storage)
        if not self.retention_after:
            return 0
        before = self.clock() - max(self.retention_after, SHORTEST)
        purged = 0
        while True:
            with self.db.transaction() as conn:
                count = _purge_closed_tickets(conn, before=before, limit=self.batch)
                if count:
                    record(
                        conn,
                        "TICKETS_PURGED",
                        SYSTEM,
                        data={"tickets": count, "closed_before": before.isoformat()},
                    )
            remove_pending_files(self.db, self.storage)
            purged += count
            if count < self.batch:
                return purged


def retention_jobs(purge: RetentionPurge) -> dict[str, Callable[[], int]]:
    """The scheduler's jobs about personal data, by name (its registry: supportdesk/cli.py)."""
    return {"retention_purge": purge.purge}
