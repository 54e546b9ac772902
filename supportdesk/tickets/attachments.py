"""Attachments: files stored for a message, their rows, and the way back to them.

Files are stored before the transaction that writes their message, under generated keys
(`tickets/<ticket id>/<uuid>`), so that transaction stays short; if it fails, `stashed`
deletes them again: no file without its row (unless the storage is what failed: deleting
would wait for it as long again, so the keys left behind are logged instead). Each row is
written in that transaction, with an ATTACHMENT_ADDED event. A download needs access to
the ticket (staff, under the one visibility rule) or a signed, expiring link (what
customers get in their emails).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import psycopg

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound, Unauthenticated
from supportdesk.core.signing import SignedLinks
from supportdesk.files.storage import Storage, StorageUnavailable
from supportdesk.files.uploads import IMAGES, TEXT_TYPES, Upload, close_all
from supportdesk.tickets.access import visibility
from supportdesk.tickets.timeline import record_event

log = logging.getLogger("supportdesk.tickets.attachments")

LINK_PURPOSE = "attachment"
# Every attachment's key starts so (`tickets/<ticket id>/<uuid>`), and every file of a saved
# reply's so (`saved-replies/<saved reply id>/<uuid>`, tickets/saved_reply_files.py): the
# storage's own folders, the only ones the orphan sweep (tickets/orphan_files.py) looks into.
KEY_PREFIX = "tickets/"
SAVED_REPLY_PREFIX = "saved-replies/"
FOLDERS = (KEY_PREFIX, SAVED_REPLY_PREFIX)
LINK_DAYS = 30  # how long the link in a customer's email works

_insert_attachment = queries.insert_attachment
_visible_attachment = queries.visible_attachment
_attachment_by_id = queries.attachment_by_id

Row = Mapping[str, Any]


def _left_behind(keys: list[str]) -> None:
    """Files of a failed write that the storage was too slow or down to delete."""
    if keys:
        log.error("storage unavailable: files that may be left without rows: %s", ", ".join(keys))


@dataclass(frozen=True)
class Stored:
    upload: Upload
    key: str


@dataclass(frozen=True)
class Download:
    """How to answer a download: a redirect (`url`) or the bytes, and the headers."""

    row: Row
    url: str | None
    headers: dict[str, str]
    content_type: str  # the stored type; text is served as UTF-8 (what it was checked to be)


def public_attachment(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "filename": row["filename"],
        "content_type": row["content_type"],
        "size": row["size_bytes"],
        "url": f"/api/attachments/{row['id']}",
    }


def content_disposition(kind: str, filename: str) -> str:
    """`attachment; filename="..."; filename*=UTF-8''...`: an ASCII fallback any client
    reads, and the real name for those that read RFC 6266."""
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in filename
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class AttachmentService:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        links: SignedLinks,
        public_base_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.storage = storage
        self.links = links
        self.public_base_url = public_base_url
        self.clock = clock

    # --- storing -------------------------------------------------------------------------

    def stashed(self, ticket_id: int, uploads: Sequence[Upload]) -> Iterator[list[Stored]]:
        """Store the files for the block, which writes their rows; if it fails, the files
        are deleted again. The uploads' temporary files are closed either way."""
        return self.stashed_in(f"{KEY_PREFIX}{ticket_id}/", uploads)

    @contextmanager
    def stashed_in(self, folder: str, uploads: Sequence[Upload]) -> Iterator[list[Stored]]:
        """`stashed`, in one of the FOLDERS (`folder` ends with a slash)."""
        stored: list[Stored] = []
        putting: str | None = None  # a key being stored: it may exist if that fails
        try:
            for upload in uploads:
                putting = f"{folder}{uuid.uuid4().hex}"
                self.storage.put(putting, upload.file, upload.content_type)
                stored.append(Stored(upload, putting))
                putting = None
            yield stored
        except StorageUnavailable:
            _left_behind([item.key for item in stored] + ([putting] if putting else []))
            raise
        except BaseException:
            self._delete([item.key for item in stored])
            raise
        finally:
            close_all(uploads)

    def delete_stored(self, keys: Sequence[str]) -> None:
        """Remove files whose rows are gone (committed): a storage that fails leaves them
        logged, and the orphan sweep removes them later (they have no row)."""
        self._delete(list(keys))

    def _delete(self, keys: list[str]) -> None:
        for done, key in enumerate(keys):
            try:
                self.storage.delete(key)
            except StorageUnavailable:  # the rest would wait as long again
                _left_behind(keys[done:])
                return
            except Exception:  # a file we could not delete is logged, never hidden
                log.exception("could not delete %s after a failed write", key)

    def record(
        self,
        conn: psycopg.Connection,
        ticket_id: int,
        message_id: int,
        stored: Sequence[Stored],
        *,
        actor: Row | None,
        now: datetime,
    ) -> list[Row]:
        """The rows and ATTACHMENT_ADDED events of stored files, in the caller's transaction."""
        rows = []
        for item in stored:
            upload = item.upload
            row = _insert_attachment(
                conn,
                ticket_id=ticket_id,
                message_id=message_id,
                filename=upload.filename,
                content_type=upload.content_type,
                size_bytes=upload.size,
                sha256=upload.sha256,
                storage_key=item.key,
                url=self.storage.location(item.key),
                created_at=now,
            )
            record_event(
                conn,
                ticket_id,
                "ATTACHMENT_ADDED",
                actor=actor,
                now=now,
                data={
                    "attachment_id": row["id"],
                    "message_id": message_id,
                    "filename": upload.filename,
                    "content_type": upload.content_type,
                    "size": upload.size,
                },
            )
            rows.append(row)
        return rows

    # --- getting them back ---------------------------------------------------------------

    def signed_link(self, attachment_id: int) -> str:
        """A link that opens the file without a login until it expires (LINK_DAYS)."""
        query = self.links.query(LINK_PURPOSE, str(attachment_id), LINK_DAYS)
        return f"{self.public_base_url}/api/attachments/{attachment_id}?{query}"

    def for_viewer(self, viewer: Row | None, attachment_id: int, *, by_link: bool) -> Row:
        """The attachment, if the staff `viewer` may see its ticket, or when the request came
        with a valid signed link for it (the middleware checked it: `by_link`)."""
        with self.db.transaction() as conn:
            if by_link:
                row = _attachment_by_id(conn, id=attachment_id)
            elif viewer is None:
                raise Unauthenticated()
            else:
                row = _visible_attachment(conn, id=attachment_id, **visibility(viewer))
        if row is None:
            raise NotFound("No such file.")
        return row

    def download(self, row: Row, *, inline: bool = False) -> Download:
        """Always a download (`attachment`), with the stored type; images may be shown
        `inline` (the thread's thumbnails)."""
        kind = "inline" if inline and row["content_type"] in IMAGES else "attachment"
        disposition = content_disposition(kind, row["filename"])
        content_type = row["content_type"]
        if content_type in TEXT_TYPES:
            content_type += "; charset=utf-8"
        url = self.storage.download_url(
            row["storage_key"], content_type=content_type, disposition=disposition
        )
        headers = {
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            # Should a browser render it after all, it runs nothing and reaches nothing.
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'",
            "Cache-Control": "private, max-age=300",
        }
        return Download(row, url, headers, content_type)
