"""The conversation of a ticket: customer messages, staff replies and internal notes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from supportdesk.access import visible_ticket
from supportdesk.db import Database, queries

_ticket_thread = queries.ticket_thread

Row = Mapping[str, Any]


class MessageService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.clock = clock

    def thread(self, viewer: Row, pid: str) -> tuple[Row, list[Row]]:
        """The ticket and its messages, oldest first."""
        with self.db.transaction() as conn:
            ticket = visible_ticket(conn, viewer, pid)
            return ticket, _ticket_thread(conn, ticket_id=ticket["id"])
