"""A customer's data as a zip of JSON and files (DESIGN.md section 13; GDPR articles 15
and 20: a copy of their data, in a structured, machine-readable form).

The zip holds `manifest.json` (what is inside, with each file's SHA-256), one
`tickets/<pid>.json` per ticket (the ticket, its messages, its timeline as the desk shows
it), `quarantine.json` and the raw emails kept there, and the files under `files/`. It is
written to a spooled temporary file: in memory up to SPOOL_BYTES, on disk beyond, so an
export of many large files stays bounded in memory; the response streams it from there.
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import psycopg

from supportdesk.accounts.audit import Origin, customer_key, record
from supportdesk.core.db import Database, queries
from supportdesk.files.storage import Storage
from supportdesk.privacy.erasure import parse_customer_email
from supportdesk.tickets.service import public_ticket
from supportdesk.tickets.timeline import public_event, ticket_events

_customer_tickets = queries.customer_tickets
_export_messages = queries.export_messages
_export_attachments = queries.export_attachments
_export_quarantine = queries.export_quarantine

SPOOL_BYTES = 8 * 1024 * 1024
FORMAT_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

Row = Mapping[str, Any]


@dataclass
class Export:
    """The finished zip (at its start, ready to read) and its size and name."""

    file: IO[bytes]
    size: int
    filename: str
    tickets: int
    files: int


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode()


def _message(row: Row, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "author": row["author"],
        "author_email": row["author_email"],
        "author_name": row["author_name"],
        "visibility": row["visibility"],
        "channel": row["channel"],
        "body": row["body"],
        "full_body": row["full_body"],
        "html_body": row["html_body"],
        "created_at": row["created_at"].isoformat(),
        "files": files,
    }


def _names_them(event: Row, email: str) -> bool:
    return email in json.dumps(event["data"] or {}).lower()


class ExportService:
    def __init__(
        self,
        db: Database,
        storage: Storage,
        secret_key: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.storage = storage
        self.secret_key = secret_key
        self.clock = clock

    def export(self, origin: Origin, email: str) -> Export:
        """Everything the desk holds about `email`, zipped. The rows are read in one
        snapshot, with the CUSTOMER_EXPORTED audit row (named by the keyed hash only); the
        files are read from storage after that transaction, which so stays short."""
        email = parse_customer_email(email)
        key = customer_key(self.secret_key, email)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned)
        try:
            with zipfile.ZipFile(spool, "w") as zf:
                with self.db.transaction() as conn:
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    manifest, files = self._rows(conn, zf, email)
                    record(
                        conn,
                        "CUSTOMER_EXPORTED",
                        origin,
                        target=("customer", key),
                        data={"tickets": len(manifest["tickets"]), "files": len(files)},
                    )
                for attachment, entry in files:
                    self._file(zf, attachment, entry)
                zf.writestr("manifest.json", _json(manifest))
            size = spool.tell()
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return Export(
            spool,
            size,
            f"customer-{key[:12]}-{self.clock():%Y%m%d}.zip",
            len(manifest["tickets"]),
            len(files),
        )

    def _rows(self, conn: psycopg.Connection, zf: zipfile.ZipFile, email: str):
        manifest: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "customer": email,
            "exported_at": self.clock().isoformat(),
            "tickets": [],
            "files": [],
            "quarantine": [],
        }
        files: list[tuple[Row, dict[str, Any]]] = []
        for ticket in _customer_tickets(conn, email=email):
            manifest["tickets"].append(self._ticket(conn, zf, ticket, email, files))
        manifest["files"] = [entry for _, entry in files]
        for kept in _export_quarantine(conn, email=email):
            suffix = "eml" if kept["raw_type"] == "message/rfc822" else "json"
            path = f"quarantine/{kept['id']}.{suffix}"
            zf.writestr(path, bytes(kept["raw"]))
            manifest["quarantine"].append(
                {
                    "path": path,
                    "from": kept["from_header"],
                    "subject": kept["subject"],
                    "reason": kept["reason"],
                    "received_at": kept["received_at"].isoformat(),
                }
            )
        return manifest, files

    def _file(self, zf: zipfile.ZipFile, attachment: Row, entry: dict[str, Any]) -> None:
        """One file's bytes into the zip, chunk by chunk; a file missing from storage is
        said so in the manifest rather than failing the whole export."""
        try:
            chunks = self.storage.read(attachment["storage_key"])
        except FileNotFoundError:
            entry["missing"] = True
            return
        with zf.open(entry["path"], "w", force_zip64=True) as out:
            for chunk in chunks:
                out.write(chunk)

    def _ticket(self, conn, zf, ticket: Row, email: str, files: list) -> dict:
        as_requester = bool(ticket["as_requester"])
        messages = _export_messages(
            conn, ticket_id=ticket["id"], as_requester=as_requester, email=email
        )
        by_message: dict[int, list[dict[str, Any]]] = {}
        for attachment in _export_attachments(conn, message_ids=[m["id"] for m in messages]):
            path = (
                f"files/{ticket['pid']}/{attachment['id']}-"
                f"{_UNSAFE.sub('_', attachment['filename'])[:100]}"
            )
            entry = {
                "path": path,
                "filename": attachment["filename"],
                "content_type": attachment["content_type"],
                "size": attachment["size_bytes"],
                "sha256": attachment["sha256"],
            }
            by_message.setdefault(attachment["message_id"], []).append(entry)
            files.append((attachment, entry))
        events = [
            public_event(e)
            for e in ticket_events(conn, ticket["id"])
            if as_requester or _names_them(e, email)
        ]
        document = {
            "ticket": public_ticket(ticket),
            "role": "requester" if as_requester else "participant",
            "messages": [_message(m, by_message.get(m["id"], [])) for m in messages],
            "timeline": events,
        }
        path = f"tickets/{ticket['pid']}.json"
        zf.writestr(path, _json(document))
        return {"pid": ticket["pid"], "path": path, "role": document["role"]}
