"""The quarantine, as an ADMIN works it (DESIGN.md sections 6 and 10): the emails that
opened no ticket, a ticket opened from one, and one discarded.

Mail is never refused for its content: an email with no usable sender address (and, from
issue 22, one from a blocked sender) is kept whole by the inbound service (service.py), and
the way in answers 2xx. An ADMIN who knows who wrote it names the requester: the kept
email is read again and goes through the same inbound service as any email, as if that
address had sent it (threading, duplicates, files, the acknowledgement), and leaves the
quarantine in the same transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound
from supportdesk.core.fields import EMAIL, Body, Field, Query
from supportdesk.core.paging import PAGE, PER_PAGE, not_too_deep
from supportdesk.mail.inbound.parse import JSON, InboundEmail, display_name_of
from supportdesk.mail.inbound.sandbox import ParseSandbox
from supportdesk.mail.inbound.service import InboundService, Received

COUNT_CAP = 10_000  # the list's total is exact up to this many

_list_quarantine = queries.list_quarantine
_count_quarantine = queries.count_quarantine
_quarantined_for_ticket = queries.quarantined_for_ticket
_discard_quarantined = queries.discard_quarantined

Row = Mapping[str, Any]

QUARANTINE_FILTERS = Query((PAGE, PER_PAGE), across=not_too_deep)
QUARANTINE_TICKET = Body(
    "QuarantineTicket",
    (
        Field(
            "requester_email",
            EMAIL,
            "Enter the customer's email address.",
            required=True,
            description="who wrote it: the ticket's requester, who gets the acknowledgement",
        ),
    ),
)


@dataclass(frozen=True)
class QuarantineFilters:
    page: int = 1
    per_page: int = 25


def parse_quarantine_filters(params: Mapping[str, Any]) -> QuarantineFilters:
    return QuarantineFilters(**QUARANTINE_FILTERS.parse(params))


def parse_quarantine_ticket(data: Mapping[str, Any]) -> str:
    """The requester's address (lower-cased), or ValidationFailed."""
    return str(QUARANTINE_TICKET.parse(data)["requester_email"])


def public_quarantined(row: Row) -> dict[str, Any]:
    received_at: datetime = row["received_at"]
    return {
        "id": row["id"],
        "received_at": received_at.isoformat(),
        "from": row["from_header"],
        "subject": row["subject"],
        "reason": row["reason"],
    }


@dataclass(frozen=True)
class QuarantinePage:
    items: list[Row]
    counted: int  # up to COUNT_CAP + 1
    filters: QuarantineFilters

    @property
    def total(self) -> int:
        return min(self.counted, COUNT_CAP)

    @property
    def total_capped(self) -> bool:
        return self.counted > COUNT_CAP


class QuarantineService:
    def __init__(self, db: Database, inbound: InboundService, parser: ParseSandbox):
        self.db = db
        self.inbound = inbound
        self.parser = parser

    def list(self, filters: QuarantineFilters) -> QuarantinePage:
        """A page of the kept emails, newest first."""
        with self.db.transaction() as conn:
            items = _list_quarantine(
                conn, limit=filters.per_page, offset=(filters.page - 1) * filters.per_page
            )
            counted = _count_quarantine(conn, cap=COUNT_CAP)
        return QuarantinePage(items, counted, filters)

    def open_ticket(self, quarantine_id: int, requester_email: str) -> Received:
        """The kept email through the inbound service, sent by `requester_email`; it leaves
        the quarantine in the same transaction (a failure keeps it there). A duplicate
        names the ticket that already holds its Message-ID."""
        with self.db.transaction() as conn:
            row = _quarantined_for_ticket(conn, id=quarantine_id)
            if row is None:
                raise NotFound("No such email in the quarantine.")
            _discard_quarantined(conn, id=quarantine_id)
            # The ADMIN vouches for the sender: even a blocked one gets its ticket.
            return self.inbound.receive(self._read_again(row, requester_email), vouched=True)

    def discard(self, quarantine_id: int) -> None:
        with self.db.transaction() as conn:
            if not _discard_quarantined(conn, id=quarantine_id):
                raise NotFound("No such email in the quarantine.")

    def _read_again(self, row: Row, requester_email: str) -> InboundEmail:
        """The kept email parsed as when it came (in the sandbox, with its deadline), with
        `requester_email` as its sender."""
        raw = bytes(row["raw"])
        if row["raw_type"] == JSON:
            email = self.parser.parse_json(json.loads(raw), raw)
        else:
            email = self.parser.parse_mime(raw)
        name = email.sender_name if email.sender == requester_email else ""
        return dataclasses.replace(
            email,
            sender=requester_email,
            sender_name=display_name_of(name, requester_email),
            # An ADMIN vouches for the address: it stands as the From line, so the email
            # threads like any other from that address.
            from_header=requester_email,
            original=None,
            # The ADMIN named the requester: whatever it forwards, the ticket is theirs.
            forwarded=None,
        )
