"""The files of a saved reply (DESIGN.md section 12): added, removed, downloaded, and copied
onto a reply that is sent with them.

A file is accepted by the same checks as an attachment (files/uploads.py: size, type by
content, cleaned name; at most MAX_UPLOAD_FILES a saved reply, since they all go on one
message) and stored through the same storage, under `saved-replies/<reply id>/<uuid>`:
stored before the transaction that writes its row, deleted again if that fails
(AttachmentService.stashed_in). Who may add or remove one: whoever may change the saved
reply; who may download or send one: whoever may use it (another's personal reply: 404).

Sent with a reply, a file is read back and stored again under the ticket, as an uploaded
file would be (`copies` hands the message service Uploads): the ticket's attachment has its
own key, so deleting the saved reply later leaves the ticket whole. A removed file's (or a
deleted saved reply's) stored bytes go after the commit; a crash or a storage that fails in
between leaves them without a row, and the orphan sweep removes them (tickets/orphan_files.py).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound, PayloadTooLarge, ValidationFailed
from supportdesk.files.uploads import (
    FIELD,
    SPOOL_IN_MEMORY,
    Upload,
    UploadLimits,
    close_all,
    too_many_files,
)
from supportdesk.tickets.attachments import SAVED_REPLY_PREFIX, AttachmentService
from supportdesk.tickets.saved_replies import lock_changeable, usable_reply

_files_of = queries.saved_reply_files_of
_count_files = queries.count_saved_reply_files
_insert_file = queries.insert_saved_reply_file
_delete_file = queries.delete_saved_reply_file
_delete_files = queries.delete_saved_reply_files
_usable_file = queries.usable_saved_reply_file
_usable_files = queries.usable_saved_reply_files

Row = Mapping[str, Any]
# The field of a staff reply that names saved replies' files to attach (tickets/inputs.py).
CHOSEN = "saved_reply_files"


class SavedReplyFiles:
    def __init__(
        self,
        db: Database,
        attachments: AttachmentService,
        limits: UploadLimits,
        clock: Callable[[], datetime],
    ):
        self.db = db
        self.attachments = attachments
        self.limits = limits
        self.clock = clock

    def of(self, conn: psycopg.Connection, reply_ids: Iterable[int]) -> dict[int, list[Row]]:
        """Each saved reply's files, oldest first (the caller checked who may see them)."""
        files: dict[int, list[Row]] = {}
        for row in _files_of(conn, reply_ids=list(reply_ids)):
            files.setdefault(row["saved_reply_id"], []).append(row)
        return files

    def add(self, actor: Row, reply_id: int, uploads: Sequence[Upload]) -> list[Row]:
        """Store accepted files on a saved reply the actor may change (404, 403 otherwise);
        413 past MAX_UPLOAD_FILES on it. The uploads are closed either way."""
        try:
            if not uploads:
                raise ValidationFailed({FIELD: "Choose a file to add."})
            with self.db.transaction() as conn:  # refused before anything is stored
                self._room(conn, lock_changeable(conn, actor, reply_id), len(uploads))
        except BaseException:
            close_all(uploads)
            raise
        folder = f"{SAVED_REPLY_PREFIX}{reply_id}/"
        with self.attachments.stashed_in(folder, uploads) as stored, self.db.transaction() as conn:
            # Again under the lock: deleted, or filled by another request, meanwhile.
            self._room(conn, lock_changeable(conn, actor, reply_id), len(uploads))
            now = self.clock()
            return [
                _insert_file(
                    conn,
                    reply_id=reply_id,
                    filename=item.upload.filename,
                    content_type=item.upload.content_type,
                    size_bytes=item.upload.size,
                    sha256=item.upload.sha256,
                    storage_key=item.key,
                    now=now,
                )
                for item in stored
            ]

    def _room(self, conn: psycopg.Connection, reply: Row, adding: int) -> None:
        held = _count_files(conn, reply_id=reply["id"])
        most = self.limits.max_files
        if held + adding > most:
            message = (
                f"A saved reply holds at most {most} files (they go on one message); "
                f"this one has {held}."
            )
            raise PayloadTooLarge(message, details={FIELD: message})

    def delete(self, actor: Row, reply_id: int, file_id: int) -> None:
        """Remove one file of a saved reply the actor may change; its bytes after commit."""
        with self.db.transaction() as conn:
            lock_changeable(conn, actor, reply_id)
            gone = _delete_file(conn, id=file_id, reply_id=reply_id)
            if gone is None:
                raise NotFound("No such file of this saved reply.")
            self.db.after_commit(self.attachments.delete_stored, [gone["storage_key"]])

    def forget_all(self, conn: psycopg.Connection, reply_id: int) -> None:
        """In the transaction deleting the saved reply: its files' rows, and their bytes
        once that commits."""
        keys = [row["storage_key"] for row in _delete_files(conn, reply_id=reply_id)]
        if keys:
            self.db.after_commit(self.attachments.delete_stored, keys)

    def for_download(self, viewer: Row, reply_id: int, file_id: int) -> Row:
        """A file of a saved reply the viewer may use (404 otherwise)."""
        with self.db.transaction() as conn:
            usable_reply(conn, viewer, reply_id)
            row = _usable_file(conn, id=file_id, reply_id=reply_id, staff_id=viewer["id"])
        if row is None:
            raise NotFound("No such file of this saved reply.")
        return row

    def usable(self, viewer: Row, ids: Iterable[int]) -> list[Row]:
        """Those of these files the viewer may use (of a shared reply, or of its own)."""
        with self.db.transaction() as conn:
            return list(_usable_files(conn, ids=list(ids), staff_id=viewer["id"]))

    def copies(self, viewer: Row, ids: Sequence[int], *, already: int) -> list[Upload]:
        """The chosen files, read back as Uploads for a message that already has `already`
        files: 413 past MAX_UPLOAD_FILES in all, 422 naming any the viewer may not use (or
        that is gone). The caller stores them (and closes them) as uploaded files."""
        if already + len(ids) > self.limits.max_files:
            raise too_many_files(self.limits.max_files)
        rows = {row["id"]: row for row in self.usable(viewer, ids)}
        if missing := [str(i) for i in ids if i not in rows]:
            raise ValidationFailed(
                {
                    CHOSEN: "No such file of a saved reply you may use: "
                    f"{', '.join(missing)}. Insert the saved reply again."
                }
            )
        uploads: list[Upload] = []
        try:
            for file_id in ids:
                uploads.append(self._read_back(rows[file_id]))
        except BaseException:
            close_all(uploads)
            raise
        return uploads

    def _read_back(self, row: Row) -> Upload:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        digest, size = hashlib.sha256(), 0
        try:
            for chunk in self.attachments.storage.read(row["storage_key"]):
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
        except FileNotFoundError:
            spool.close()
            raise ValidationFailed(
                {CHOSEN: f"{row['filename']} of the saved reply is no longer stored."}
            ) from None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return Upload(row["filename"], row["content_type"], size, digest.hexdigest(), spool)
