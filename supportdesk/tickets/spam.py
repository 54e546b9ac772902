"""Spam and blocked senders (DESIGN.md section 12).

Marking a ticket as spam closes it with one SPAM event and blocks its requester's exact
address; no email goes to anyone (the customer is never told). Whoever may see a ticket may
mark it (an AGENT its own, as it may close it): the block is undone by an ADMIN, who
manages the list (`BlockedSenders`), addresses and whole @domains alike.

A pattern is an address (`spammer@example.com`) or a domain (`@example.com`), lower-case.
A domain also blocks its subdomains (`@example.com` blocks `x@mail.example.com`): they are
under the same owner, and spammers rotate through them; `@example.com` never blocks
`x@badexample.com`. Mail from a blocked sender goes to the quarantine, by every way in
(mail/inbound/service.py); the public form from a blocked address is kept there too and
opens nothing (web form and API alike answer as if it went through, without a number).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Conflict, NotFound, ValidationFailed
from supportdesk.core.fields import Body, Field, Kind
from supportdesk.core.text import EMAIL_ADDRESS, Problems
from supportdesk.core.vocabulary import MAX_EMAIL
from supportdesk.tickets.access import lock_visible_ticket, visible_ticket
from supportdesk.tickets.timeline import record_event

_blocking_pattern = queries.blocking_pattern
_block_sender = queries.block_sender
_blocked_sender_by_pattern = queries.blocked_sender_by_pattern
_list_blocked_senders = queries.list_blocked_senders
_unblock_sender = queries.unblock_sender
_own_address_blocked_by = queries.own_address_blocked_by
_set_ticket_fields = queries.set_ticket_fields

Row = Mapping[str, Any]
PATTERN_MESSAGE = "Enter an email address (name@example.com) or a domain (@example.com)."


# --- patterns --------------------------------------------------------------------------------


def clean_pattern(value: object) -> str | None:
    """An address or @domain, lower-cased; None when it is neither."""
    if not isinstance(value, str):
        return None
    pattern = value.strip().lower()
    if not pattern or len(pattern) > MAX_EMAIL:
        return None
    # A domain is checked as the domain of an address; EMAIL_ADDRESS wants a dot in it.
    candidate = "x" + pattern if pattern.startswith("@") else pattern
    return pattern if EMAIL_ADDRESS.match(candidate) else None


def _pattern(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> str | None:
    pattern = clean_pattern(value)
    if pattern is None:
        problems[field.name] = field.message
    return pattern


PATTERN = Kind({"type": "string", "minLength": 3, "maxLength": MAX_EMAIL}, _pattern)
NEW_BLOCKED_SENDER = Body(
    "NewBlockedSender",
    (
        Field(
            "pattern",
            PATTERN,
            PATTERN_MESSAGE,
            required=True,
            description="an address, or @domain (which also blocks its subdomains)",
        ),
    ),
)


def parse_blocked_sender(data: Mapping[str, Any]) -> str:
    return str(NEW_BLOCKED_SENDER.parse(data)["pattern"])


def patterns_of(address: str) -> list[str]:
    """The patterns that would block `address`: itself, its domain and each parent domain
    (`a@mail.example.com` -> the address, `@mail.example.com`, `@example.com`, `@com`)."""
    address = address.strip().lower()
    _, _, domain = address.rpartition("@")
    labels = domain.split(".") if domain else []
    return [address] + ["@" + ".".join(labels[i:]) for i in range(len(labels))]


def blocking_pattern(conn: psycopg.Connection, address: str) -> str | None:
    """The blocked pattern that covers `address` (the most specific), or None."""
    if not address or "@" not in address:
        return None
    found = _blocking_pattern(conn, patterns=patterns_of(address))
    return None if found is None else str(found)


def public_blocked_sender(row: Row) -> dict[str, Any]:
    creator = None
    if row["created_by"] is not None:
        creator = {"id": row["created_by"], "name": row.get("created_by_name")}
    return {
        "id": row["id"],
        "pattern": row["pattern"],
        "created_by": creator,
        "created_at": row["created_at"].isoformat(),
    }


# --- services --------------------------------------------------------------------------------


class BlockedSenders:
    """The ADMIN's list of blocked addresses and domains."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.clock = clock

    def list(self) -> list[Row]:
        with self.db.transaction() as conn:
            return list(_list_blocked_senders(conn))

    def add(self, actor: Row, pattern: str) -> Row:
        """Block a pattern; Conflict (naming the existing row) when it is blocked already;
        ValidationFailed when it would block a staff member or one of our mailboxes."""
        with self.db.transaction() as conn:
            own = _own_address_blocked_by(conn, pattern=pattern)
            if own is not None:
                who = f"{own['name']} <{own['address']}>" if own["name"] else own["address"]
                raise ValidationFailed(
                    {"pattern": f"This would block our own {who}: their mail would go to the "
                                "quarantine. Block a narrower address."}
                )  # fmt: skip
            added = _block_sender(conn, pattern=pattern, created_by=actor["id"], now=self.clock())
            row = _blocked_sender_by_pattern(conn, pattern=pattern)
        if added is None:
            raise Conflict(
                "This sender is blocked already.",
                details={"pattern": "Already blocked.", "id": row["id"]},
            )
        return row

    def remove(self, blocked_id: int) -> None:
        with self.db.transaction() as conn:
            if _unblock_sender(conn, id=blocked_id) is None:
                raise NotFound("No such blocked sender.")


@dataclass(frozen=True)
class Marked:
    ticket: Row
    changed: bool
    blocked: str | None  # the pattern this mark added, None if already covered


def mark_spam_locked(conn: psycopg.Connection, ticket: Row, actor: Row, now: datetime) -> Marked:
    """Close a ticket locked by the caller as spam and block its requester's address, in
    the caller's transaction: one SPAM event `{from, to, blocked, blocked_by}`. A CLOSED
    ticket whose requester is blocked already is left as it is (no event)."""
    address = ticket["requester_email"].lower()
    covering = blocking_pattern(conn, address)
    if ticket["status"] == "CLOSED" and covering is not None:
        return Marked(ticket, False, None)
    added = None
    # Our own people and mailboxes are never blocked: the ticket is closed as spam alone.
    if covering is None and _own_address_blocked_by(conn, pattern=address) is None:
        row = _block_sender(conn, pattern=address, created_by=actor["id"], now=now)
        added = row["pattern"] if row is not None else None
    updated = _set_ticket_fields(
        conn,
        id=ticket["id"],
        now=now,
        status="CLOSED",
        priority=ticket["priority"],
        assigned_to=ticket["assigned_to"],
    )
    record_event(
        conn,
        ticket["id"],
        "SPAM",
        actor=actor,
        now=now,
        data={
            "from": ticket["status"],
            "to": "CLOSED",
            "blocked": added,
            # Blocked before, by this pattern (perhaps a domain): nothing was added.
            "blocked_by": covering,
        },
    )
    return Marked(updated, True, added)


class SpamService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.clock = clock

    def mark(self, actor: Row, pid: str) -> tuple[Row, bool]:
        """Mark one ticket the actor may see as spam: (the ticket as it is now, changed)."""
        with self.db.transaction() as conn:
            ticket = lock_visible_ticket(conn, actor, pid)
            marked = mark_spam_locked(conn, ticket, actor, self.clock())
            return visible_ticket(conn, actor, pid), marked.changed


# --- the public form from a blocked address -------------------------------------------------------


class KeptAway(Exception):
    """The public form (or the public API) from a blocked address: kept in the quarantine,
    no ticket, no email. The caller answers as if it went through, without a number: a
    spammer is never told it is blocked."""

    def __init__(self, quarantine_id: int):
        super().__init__(quarantine_id)
        self.quarantine_id = quarantine_id


_quarantine_email = queries.quarantine_email


def keep_if_blocked(
    conn: psycopg.Connection, name: str, email: str, subject: str, body: str
) -> int | None:
    """When `email` is blocked, keep the request in the quarantine and return its id (the
    caller raises KeptAway once this is committed); else None. It is kept as the webhook's
    JSON email, so that an ADMIN who opens a ticket from it gets what was typed (files are
    not kept)."""
    pattern = blocking_pattern(conn, email)
    if pattern is None:
        return None
    message_id = f"<web.{secrets.token_hex(12)}@supportdesk.invalid>"
    payload = {
        "from": f"{name} <{email}>",
        "subject": subject,
        "text": body,
        "message_id": message_id,
    }
    kept = _quarantine_email(
        conn,
        mailbox_id=None,
        from_header=payload["from"],
        subject=subject,
        reason=f"blocked sender ({pattern}), by the web form",
        email_message_id=message_id,
        raw=json.dumps(payload).encode(),
        raw_type="application/json",
        sender_auth="none",
    )
    return int(kept["id"])
