"""The orphan sweep (DESIGN.md section 13): files in storage with no attachments row, left
by a store that failed after the file was written, removed by the scheduler.

A file is stored before the transaction that writes its row (tickets/attachments.py
`stashed`), so for a moment every new file has no row yet. Only files last written more
than ORPHAN_AGE ago are looked at: a row being written belongs to a file stored within
that request or that email's handling (a web request stores for at most 12 s and ends
within 30 s; the SMTP listener and the mailbox fetchers write their rows seconds after
storing), and a key is a fresh uuid, never stored twice. So a file an hour old with no row
gets none later: nothing that is on its way to having a row is ever removed.

Only the storage's own folders (FOLDERS: `tickets/` for attachments, `saved-replies/` for
the files of saved replies) are listed, never the rest of the bucket or of UPLOAD_DIR, and
local symbolic links are not followed. The keys are checked against both tables (a file
kept by either is no orphan) a batch at a time, newest rows seen as they are at that
moment. A saved reply's file is stored before its row too, and a deleted one's bytes are
removed after the commit: a crash in either leaves a file without a row, removed here.
Folders are left in place: removing one could race a store that is making it. A local
store's partial file (`.<uuid>.part`) is an orphan too once an hour has passed since its
last byte was written; on S3 an upload is not listed until it is whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from supportdesk.core.db import Database, queries
from supportdesk.files.storage import Storage, StoredFile
from supportdesk.tickets.attachments import FOLDERS

log = logging.getLogger("supportdesk.tickets.orphan_files")

ORPHAN_AGE = timedelta(hours=1)
BATCH = 500  # keys checked against the table in one query

_stored_keys = queries.stored_keys


class OrphanSweep:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch: int = BATCH,
    ):
        self.db = db
        self.storage = storage
        self.clock = clock
        self.batch = batch

    def run(self) -> int:
        """Remove the files older than ORPHAN_AGE that have no row; how many it removed.
        Idempotent: a second run finds nothing more to remove."""
        cutoff = self.clock() - ORPHAN_AGE
        removed = 0
        for batch in _batches(self._old_files(cutoff), self.batch):
            with self.db.transaction() as conn:
                kept = {row["storage_key"] for row in _stored_keys(conn, keys=batch)}
            for key in batch:
                if key not in kept:
                    self.storage.delete(key)
                    log.info("removed %s: no row, stored before %s", key, cutoff)
                    removed += 1
        return removed

    def _old_files(self, cutoff: datetime) -> Iterator[str]:
        for folder in FOLDERS:
            for found in self.storage.listing(folder):
                if _inside(found, folder) and found.modified < cutoff:
                    yield found.key


def _inside(found: StoredFile, folder: str) -> bool:
    """Under the folder listed, whatever a listing said (a key is never trusted)."""
    return found.key.startswith(folder) and ".." not in found.key.split("/")


def _batches(keys: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(islice(keys, size)):
        yield batch
