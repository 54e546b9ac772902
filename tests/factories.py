"""Small factories with sensible defaults: `make_ticket(conn, subject="...")`."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from supportdesk.core.db import queries
from supportdesk.tickets.pids import take_next_pid

_counter = itertools.count(1)


def make_user(conn: psycopg.Connection, **over: Any) -> dict[str, Any]:
    n = next(_counter)
    values = {
        "email": f"staff{n}@example.com",
        "name": f"Staff {n}",
        "role": "AGENT",
        "password_hash": "$2b$04$notarealhashnotarealhashnotarealhashnotarealhashnota",
        "is_active": True,
    } | over
    return queries.insert_user(conn, **values)


def make_ticket(conn: psycopg.Connection, *, now: datetime | None = None, **over: Any) -> dict:
    """A ticket as the creating transaction writes it: the PID is taken, then the row."""
    now = now or datetime.now(UTC)
    n = next(_counter)
    values = {
        "id": None,
        "subject": f"Printer on floor {n} is jammed",
        "status": "OPEN",
        "priority": "NORMAL",
        "requester_email": f"customer{n}@example.org",
        "requester_name": f"Customer {n}",
        "channel": "WEB",
        "assigned_to": None,
        "follows_up_id": None,
        "mailbox_id": None,
        "created_at": now,
    } | over
    if "pid" not in values:
        values["pid"] = take_next_pid(conn, now)
    return queries.insert_ticket(conn, **values)


def make_message(conn: psycopg.Connection, ticket_id: int, **over: Any) -> dict[str, Any]:
    values = {
        "ticket_id": ticket_id,
        "author": "CUSTOMER",
        "author_user_id": None,
        "author_email": "customer@example.org",
        "visibility": "PUBLIC",
        "channel": "WEB",
        "body": "It prints blank pages.",
        "full_body": None,
        "html_body": None,
        "email_message_id": None,
        "created_at": datetime.now(UTC),
        "matched_by_subject_only": False,
        "sender_auth": "none",
    } | over
    if values["author"] == "CUSTOMER" and "author_email" not in over:
        # The requester wrote it (a participant's message names its own author_email).
        row = conn.execute("SELECT requester_email FROM tickets WHERE id = %s", (ticket_id,))
        values["author_email"] = (row.fetchone() or ["customer@example.org"])[0]
    return queries.insert_message(conn, **values)


def make_event(conn: psycopg.Connection, ticket_id: int, **over: Any) -> dict[str, Any]:
    values = {
        "ticket_id": ticket_id,
        "type": "CREATED",
        "actor_id": None,
        "data": {},
        "created_at": datetime.now(UTC),
    } | over
    values["data"] = Jsonb(values["data"])
    return queries.insert_event(conn, **values)


def make_outbox(conn: psycopg.Connection, **over: Any) -> dict[str, Any]:
    """An outbox row (PENDING unless told), as queue_email writes it."""
    n = next(_counter)
    values = {
        "ticket_id": None,
        "kind": "ACKNOWLEDGEMENT",
        "to_address": f"customer{n}@example.org",
        "from_address": "Support Desk <support@example.com>",
        "reply_to": "support@example.com",
        "subject": f"[#202611-{n:05d}] We received your request",
        "body_text": "Your request is ticket 202611-00001.",
        "body_html": "<p>Your request is ticket 202611-00001.</p>",
        "message_id": f"<sd.test.{n}.{uuid.uuid4().hex}@example.com>",
        "status": "PENDING",
        "attempts": 0,
        "last_error": None,
        "next_attempt_at": None,
    } | over
    columns = ", ".join(f'"{c}"' for c in values)
    placeholders = ", ".join(f"%({c})s" for c in values)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"INSERT INTO email_outbox ({columns}) VALUES ({placeholders}) RETURNING *",
            values,
        )
        return cur.fetchone()


def make_attachment(
    conn: psycopg.Connection,
    storage: Any,
    ticket_id: int,
    message_id: int,
    content: bytes = b"Printer log: jam in tray 2\n",
    **over: Any,
) -> dict[str, Any]:
    """A stored file and its row, as a message with an attachment leaves them."""
    values = {
        "ticket_id": ticket_id,
        "message_id": message_id,
        "filename": "printer.log",
        "url": None,
        "created_at": datetime.now(UTC),
    } | _stored(storage, f"tickets/{ticket_id}/{uuid.uuid4().hex}", content, over)
    return queries.insert_attachment(conn, **values)


def _stored(storage: Any, key: str, content: bytes, over: dict[str, Any]) -> dict[str, Any]:
    """A file put in storage (under `over`'s storage_key and content_type if given): the
    columns every stored file's row has, with `over` on top."""
    import hashlib
    import io

    values = {
        "content_type": "text/plain",
        "size_bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "storage_key": key,
    } | over
    storage.put(values["storage_key"], io.BytesIO(content), values["content_type"])
    return values


def make_saved_reply_file(
    conn: psycopg.Connection,
    storage: Any,
    reply_id: int,
    content: bytes = b"Our terms, in short.\n",
    **over: Any,
) -> dict[str, Any]:
    """A stored file of a saved reply and its row."""
    values = {
        "reply_id": reply_id,
        "filename": "terms.txt",
        "now": datetime.now(UTC),
    } | _stored(storage, f"saved-replies/{reply_id}/{uuid.uuid4().hex}", content, over)
    return queries.insert_saved_reply_file(conn, **values)


def expected_pid(created_at: datetime | str, n: int) -> str:
    """The PID a ticket created at `created_at` gets as the n-th of its UTC month. Tests
    read the month from the ticket, never from the clock afterwards: at a month's turn the
    two differ."""
    if isinstance(created_at, str):
        created_at = datetime.fromisoformat(created_at)
    return f"{created_at.astimezone(UTC):%Y%m}-{n:05d}"


def first_ticket_pid(conn: psycopg.Connection) -> str:
    """What the first ticket of the database should be numbered, from its creation time."""
    [created_at] = conn.execute("SELECT created_at FROM tickets ORDER BY id LIMIT 1").fetchone()
    return expected_pid(created_at, 1)


def make_quarantined(conn: psycopg.Connection, **over: Any) -> dict[str, Any]:
    """A quarantine row as the inbound service keeps it: an email whose From is garbage."""
    n = next(_counter)
    message_id = f"<kept.{n}.{uuid.uuid4().hex}@example.org>"
    raw = (
        f"From: !!! not an address {n}\r\nTo: support@example.com\r\n"
        f"Subject: Kept {n}\r\nMessage-ID: {message_id}\r\n\r\nPlease call me back.\r\n"
    ).encode()
    values = {
        "from_header": f"!!! not an address {n}",
        "subject": f"Kept {n}",
        "reason": "No sender address: none in From, Reply-To, Sender or Return-Path.",
        "email_message_id": message_id,
        "raw": raw,
        "raw_type": "message/rfc822",
    } | over
    columns = ", ".join(f'"{c}"' for c in values)
    placeholders = ", ".join(f"%({c})s" for c in values)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"INSERT INTO quarantine ({columns}) VALUES ({placeholders}) RETURNING *", values
        )
        return cur.fetchone()
