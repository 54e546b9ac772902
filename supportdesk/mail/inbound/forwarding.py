"""Forwarding in (DESIGN.md section 11): a staff member forwards a customer's email to a
support address, and the ticket belongs to the customer.

Believed only from a staff member who proves to be one: an active user whose address
passed sender authentication (sender_auth `pass`, section 10: a From line is anyone's to
write), or who holds a STAFF thread token of a ticket they may see (the inbound service's
`_thread` checks it). Anything else that looks like a forward is an ordinary email from
whoever sent it, as before. So is a forward of one of our own emails or of a colleague's:
the requester must be a customer.

A believed forward opens a NEW ticket, whatever ticket its token names: the requester is
the original's sender, the subject the original's (without `Fwd:`), the first message the
original's text as the customer's (channel EMAIL; its sender_auth `none`: nothing vouched
for the original's sender, the forwarder's verdict was about the forwarder), with the files
of the forward and of an attached original. The forwarder's own words become an INTERNAL
note by them (none when they wrote nothing), and the original's To and Cc, but for our own
addresses and staff, become participants. No acknowledgement is emailed: the customer did
not write to the desk, an agent did, and an automatic "we received your request" about an
email they sent someone else days ago would puzzle them; the agent answers when ready. The
forward's Message-ID is stored on the first message, so the same forward is stored once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from supportdesk.core.db import Database, queries
from supportdesk.core.vocabulary import MAX_BODY, MAX_SUBJECT
from supportdesk.files.uploads import Upload
from supportdesk.mail.inbound.forwarded import ATTACHED, Forwarded, without_forward_prefix
from supportdesk.mail.inbound.parse import RFC822, InboundEmail
from supportdesk.mail.inbound.sender_auth.verdicts import PASS
from supportdesk.tickets.inputs import NewTicket
from supportdesk.tickets.participants import Person, add_participants, is_our_address
from supportdesk.tickets.service import TicketService
from supportdesk.tickets.timeline import record_event

_user_by_email = queries.user_by_email
_insert_message = queries.insert_message

Row = Mapping[str, Any]
# The inbound service's reading of an email: (text shown, whole text or None, files).
Reader = Callable[[InboundEmail], tuple[str, str | None, list[Upload]]]


class ForwardsIn:
    def __init__(
        self,
        db: Database,
        tickets: TicketService,
        *,
        support_address: str,
        max_participants: int,
        clock: Callable[[], datetime],
    ):
        self.db = db
        self.tickets = tickets
        self.support_address = support_address.lower()
        self.max_participants = max_participants
        self.clock = clock

    def forwarder(self, email: InboundEmail, token_staff: Row | None) -> Row | None:
        """The staff member whose forward of a customer's email this is, if they proved
        who they are (`token_staff`: the one a STAFF token of a ticket they may see names);
        None for any other email."""
        original = email.forwarded
        if original is None or email.automatic is not None:
            return None
        with self.db.transaction() as conn:
            staff = token_staff
            # DMARC vouches for the From domain alone: an address read from Reply-To or
            # Sender (no From line names it) proves nothing.
            from_line = email.sender in email.from_header.lower()
            if staff is None and email.sender_auth == PASS and from_line:
                staff = _user_by_email(conn, email=email.sender)
            if staff is None or not staff["is_active"]:
                return None
            if is_our_address(conn, original.sender, self.support_address):
                return None
            if _user_by_email(conn, email=original.sender) is not None:
                return None
        return staff

    def open_ticket(
        self, email: InboundEmail, forwarder: Row, read: Reader, mailbox_id: int | None
    ) -> Row:
        """The customer's ticket, its first message the original, the forwarder's note and
        the original's people copied, in one transaction; returns the ticket."""
        original = email.forwarded
        assert original is not None  # forwarder() said so
        body, full, uploads = read(as_customer_email(email, original))
        new = NewTicket(
            name=original.sender_name,
            email=original.sender,
            subject=_subject(original, email),
            body=body,
            priority="NORMAL",
            email_message_id=email.message_id,
            full_body=full,
            mailbox_id=mailbox_id,
        )
        people = self._customers(original)
        with self.db.transaction() as conn:
            ticket = self.tickets.create(
                new, channel="EMAIL", actor=forwarder, uploads=uploads, acknowledge=False
            )
            now = self.clock()
            if original.note.strip():
                self._note(conn, ticket, forwarder, original.note, email.sender_auth, now)
            add_participants(
                conn,
                ticket,
                people,
                actor=forwarder,
                now=now,
                cap=self.max_participants,
                support_address=self.support_address,
            )
        return ticket

    def _customers(self, original: Forwarded) -> list[Person]:
        """The people on the original's To and Cc who are not staff (read before the
        ticket's transaction, which holds the PID counter until it commits)."""
        people = [Person(address, name) for name, address in (*original.to, *original.cc)]
        with self.db.transaction() as conn:
            return [p for p in people if _user_by_email(conn, email=p.email) is None]

    def _note(
        self, conn: Any, ticket: Row, author: Row, text: str, sender_auth: str, now: datetime
    ) -> None:
        note = text.strip()
        if len(note) > MAX_BODY:
            note = note[: MAX_BODY - 1].rstrip() + "…"
        message = _insert_message(
            conn,
            ticket_id=ticket["id"],
            author="STAFF",
            author_user_id=author["id"],
            author_email=author["email"],
            visibility="INTERNAL",
            channel="EMAIL",
            body=note,
            full_body=None,
            html_body=None,
            email_message_id=None,
            created_at=now,
            matched_by_subject_only=False,
            sender_auth=sender_auth,
        )
        record_event(
            conn,
            ticket["id"],
            "NOTE_ADDED",
            actor=author,
            now=now,
            data={"message_id": message["id"], "visibility": "INTERNAL"},
        )


def as_customer_email(email: InboundEmail, original: Forwarded) -> InboundEmail:
    """The forward as the customer's own email: the original's text, and the files of both
    (an attached original stands for itself no longer: its text and files are here)."""
    files: Sequence[Any] = email.files
    if original.how == ATTACHED:
        files = [f for f in files if f.content_type != RFC822 or f.original]
    return dataclasses.replace(
        email,
        sender=original.sender,
        sender_name=original.sender_name,
        text=original.text,
        display_text=original.display_text or original.text,
        files=(*original.files, *files),
        forwarded=None,
    )


def _subject(original: Forwarded, email: InboundEmail) -> str:
    subject = without_forward_prefix(original.subject) or without_forward_prefix(email.subject)
    return (subject or "(no subject)")[:MAX_SUBJECT]
