"""Staff copy people on a ticket and stop copying them (DESIGN.md section 11).

The API (`/api/tickets/{pid}/participants`) and the ticket page come here; a reply's `cc`
goes through `MessageService.post`, and inbound mail through the inbound service. Each
change is an event, made under the ticket's lock; who may do it is who may see the ticket
(an AGENT: its own tickets, NotFound for the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound
from supportdesk.tickets.access import lock_visible_ticket, visible_ticket
from supportdesk.tickets.participants import (
    Copying,
    Person,
    participants,
    remove_participant,
)

_touch_ticket = queries.touch_ticket

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Copied:
    participant: Row
    created: bool  # False: they were copied already, and nothing changed


class ParticipantService:
    def __init__(
        self,
        db: Database,
        copying: Copying,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.copying = copying
        self.clock = clock

    def of(self, viewer: Row, pid: str) -> list[Row]:
        """The people copied on a ticket the viewer may see, in the order they joined."""
        with self.db.transaction() as conn:
            ticket = visible_ticket(conn, viewer, pid)
            return participants(conn, ticket["id"])

    def add(self, viewer: Row, pid: str, email: str, name: str = "") -> Copied:
        """Copy `email` on the ticket: ValidationFailed for the requester, one of our own
        addresses, or a ticket that copies MAX_PARTICIPANTS already; one already copied is
        left as they are."""
        email = email.strip().lower()
        with self.db.transaction() as conn:
            ticket = lock_visible_ticket(conn, viewer, pid)
            current = participants(conn, ticket["id"])
            known = next((p for p in current if p["email"] == email), None)
            if known is not None:
                return Copied(known, created=False)
            self.copying.check(conn, ticket, [email], "email", already=len(current))
            now = self.clock()
            [added] = self.copying.add(conn, ticket, [Person(email, name)], actor=viewer, now=now)
            _touch_ticket(conn, id=ticket["id"], now=now)
        return Copied(added, created=True)

    def remove(self, viewer: Row, pid: str, email: str) -> None:
        """Stop copying `email` on the ticket: no later reply is sent to them, and their
        email no longer joins it. NotFound when they are not copied."""
        with self.db.transaction() as conn:
            ticket = lock_visible_ticket(conn, viewer, pid)
            now = self.clock()
            if remove_participant(conn, ticket, email, actor=viewer, now=now) is None:
                raise NotFound(f"{email.strip().lower()} is not copied on this ticket.")
            _touch_ticket(conn, id=ticket["id"], now=now)
