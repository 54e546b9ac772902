"""Removing the stored bytes of files whose rows are gone (DESIGN.md section 13).

Erasure and the retention purge delete attachment rows in their transaction and queue each
storage key in `pending_file_deletions` (migration 0017); the bytes are removed here, only
after that commit. A crash between the two leaves the keys queued, and the next erasure or
purge run removes them: no file of an erased customer outlives its row for long, and no
file is removed whose row a rollback brought back.
"""

from __future__ import annotations

import logging

from supportdesk.core.db import Database, queries
from supportdesk.files.storage import Storage, StorageUnavailable

_pending = queries.pending_file_deletions
_forget = queries.forget_file_deletion

BATCH = 500
log = logging.getLogger(__name__)


def remove_pending_files(db: Database, storage: Storage) -> int:
    """Remove every queued file from storage (a missing one is as good as removed); returns
    how many. A storage that does not answer leaves the rest queued for the next run."""
    removed = 0
    while True:
        with db.transaction() as conn:
            keys = [row["storage_key"] for row in _pending(conn, limit=BATCH)]
        if not keys:
            return removed
        done: list[str] = []
        try:
            for key in keys:
                storage.delete(key)
                done.append(key)
        except (StorageUnavailable, OSError) as error:
            log.warning("file removal deferred: %s (%s)", key, error)
        finally:
            if done:
                with db.transaction() as conn:
                    _forget(conn, storage_keys=done)
        removed += len(done)
        if len(done) < len(keys):
            return removed
