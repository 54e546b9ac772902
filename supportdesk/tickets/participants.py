"""The people copied on a ticket besides its requester (DESIGN.md section 11).

Participants come from the To and Cc of inbound mail, and from staff (the page, the API, and
`cc` on a reply, which replaces the list from then on). Never the requester, never one of our
own addresses (MAIL_FROM, plus-addressed or not, and the company's mailboxes), at most
MAX_PARTICIPANTS. Each change is a PARTICIPANT_ADDED or PARTICIPANT_REMOVED event, written in
the caller's transaction, under the ticket's lock. A participant's reply threads like the
requester's; a PUBLIC reply goes To the requester and Cc them, as one email.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import psycopg

from supportdesk.core.db import queries
from supportdesk.core.errors import ValidationFailed
from supportdesk.core.text import MAIL_SHAPE
from supportdesk.core.vocabulary import MAX_EMAIL, MAX_NAME
from supportdesk.tickets.timeline import record_event

_ticket_participants = queries.ticket_participants
_insert_participant = queries.insert_participant
_delete_participant = queries.delete_participant
_is_participant = queries.is_participant
_is_mailbox_address = queries.is_mailbox_address

Row = Mapping[str, Any]


class Person(NamedTuple):
    email: str
    name: str = ""


def bare_address(address: str) -> str:
    """`local+tag@domain` as `local@domain`, lower-case: the mailbox mail goes to."""
    local, _, domain = address.lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def is_our_address(conn: psycopg.Connection, address: str, support_address: str) -> bool:
    """MAIL_FROM's address or a company mailbox's, plus-addressed or not."""
    bare = bare_address(address)
    return bare == bare_address(support_address) or bool(_is_mailbox_address(conn, address=bare))


def participants(conn: psycopg.Connection, ticket_id: int) -> list[Row]:
    return _ticket_participants(conn, ticket_id=ticket_id)


def is_participant(conn: psycopg.Connection, ticket_id: int, email: str) -> bool:
    return bool(_is_participant(conn, ticket_id=ticket_id, email=email))


def public_participant(row: Row) -> dict[str, Any]:
    return {
        "email": row["email"],
        "name": row["name"],
        "added_by": row["added_by"],
        "added_at": row["added_at"].isoformat(),
    }


def add_participants(
    conn: psycopg.Connection,
    ticket: Row,
    people: Iterable[Person],
    *,
    actor: Row | None,
    now: datetime,
    cap: int,
    support_address: str,
) -> list[Row]:
    """Copy `people` on `ticket` (locked by the caller), skipping the requester, our own
    addresses, those already copied and whatever does not look like an address, until the
    ticket has `cap`; one PARTICIPANT_ADDED event each. Returns those added."""
    current = {row["email"] for row in participants(conn, ticket["id"])}
    requester = ticket["requester_email"].lower()
    added: list[Row] = []
    for person in people:
        email = person.email.strip().lower()
        if len(current) >= cap:
            break
        if (
            email in current
            or email == requester
            or len(email) > MAX_EMAIL
            or not MAIL_SHAPE.match(email)
            or is_our_address(conn, email, support_address)
        ):
            continue
        row = _insert_participant(
            conn,
            ticket_id=ticket["id"],
            email=email,
            name=" ".join(person.name.split())[:MAX_NAME],
            added_by=None if actor is None else actor["id"],
            added_at=now,
        )
        if row is None:
            continue
        current.add(email)
        added.append(row)
        record_event(
            conn,
            ticket["id"],
            "PARTICIPANT_ADDED",
            actor=actor,
            now=now,
            data={"email": email, "name": row["name"]},
        )
    return added


def remove_participant(
    conn: psycopg.Connection, ticket: Row, email: str, *, actor: Row | None, now: datetime
) -> Row | None:
    """Stop copying `email` on `ticket` (locked by the caller); a PARTICIPANT_REMOVED event.
    None (and no event) when it was not copied."""
    row = _delete_participant(conn, ticket_id=ticket["id"], email=email.strip().lower())
    if row is not None:
        record_event(
            conn,
            ticket["id"],
            "PARTICIPANT_REMOVED",
            actor=actor,
            now=now,
            data={"email": row["email"], "name": row["name"]},
        )
    return row


def replace_participants(
    conn: psycopg.Connection,
    ticket: Row,
    people: Iterable[Person],
    *,
    actor: Row | None,
    now: datetime,
    cap: int,
    support_address: str,
) -> list[Row]:
    """Make `people` the ticket's participants (a reply's `cc`): those left out are removed,
    the new ones added, each change an event. Returns the list as it now stands."""
    wanted = [Person(p.email.strip().lower(), p.name) for p in people]
    emails = {p.email for p in wanted}
    for row in participants(conn, ticket["id"]):
        if row["email"] not in emails:
            remove_participant(conn, ticket, row["email"], actor=actor, now=now)
    add_participants(
        conn, ticket, wanted, actor=actor, now=now, cap=cap, support_address=support_address
    )
    return participants(conn, ticket["id"])


@dataclass(frozen=True)
class Copying:
    """Who may be copied on a ticket: at most `cap` people (MAX_PARTICIPANTS), never one of
    our own addresses (`support_address` is MAIL_FROM's), never the requester. The services
    that change participants hold one and call these in their own transaction."""

    cap: int
    support_address: str

    def add(
        self,
        conn: psycopg.Connection,
        ticket: Row,
        people: Iterable[Person],
        *,
        actor: Row | None,
        now: datetime,
    ) -> list[Row]:
        return add_participants(
            conn,
            ticket,
            people,
            actor=actor,
            now=now,
            cap=self.cap,
            support_address=self.support_address,
        )

    def replace(
        self,
        conn: psycopg.Connection,
        ticket: Row,
        people: Iterable[Person],
        *,
        actor: Row | None,
        now: datetime,
    ) -> list[Row]:
        return replace_participants(
            conn,
            ticket,
            people,
            actor=actor,
            now=now,
            cap=self.cap,
            support_address=self.support_address,
        )

    def refusal(self, conn: psycopg.Connection, ticket: Row, email: str) -> str | None:
        """Why staff may not copy `email` (a well-formed address) on `ticket`, or None."""
        email = email.strip().lower()
        if email == ticket["requester_email"].lower():
            return f"{email} is the requester: every reply goes to them anyway."
        if is_our_address(conn, email, self.support_address):
            return f"{email} is one of our own addresses."
        return None

    def check(
        self,
        conn: psycopg.Connection,
        ticket: Row,
        emails: Sequence[str],
        field: str,
        *,
        already: int = 0,
    ) -> None:
        """ValidationFailed naming `field` unless staff may copy all of `emails` (well-formed
        addresses) on `ticket` besides `already` others: none is the requester or ours, and
        they come to at most `cap`."""
        problems = [why for email in emails if (why := self.refusal(conn, ticket, email))]
        if already + len({email.strip().lower() for email in emails}) > self.cap:
            problems.append(f"A ticket copies at most {self.cap} people.")
        if problems:
            raise ValidationFailed({field: " ".join(problems)})
