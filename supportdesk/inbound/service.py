"""Inbound email into tickets (DESIGN.md section 6): threading, duplicates, loops, status.

A message threads into a ticket, in this order: by a Message-ID it refers to (one we sent
or received, or one of ours whose signed token names the ticket), by the signed token of
the plus-address it was sent to, by a `[#PID]` in its subject. The match counts only when
the sender is the ticket's requester or a staff member who may see it: a forged header
never puts text into someone else's ticket; it opens a new ticket instead, as does a
message that matches nothing. A reply to a CLOSED ticket opens a new one that links it.

Customer replies reopen a RESOLVED or WAITING ticket and notify its assignee. A staff
member's reply is a PUBLIC staff message, emailed to the requester like any other, so it
needs more than a From line anyone can write: a signed token (in our Message-ID it
answers, or our Reply-To it was sent to), which only a recipient of our email has; a
`[#PID]` alone opens a ticket of its own. A staff member's auto-reply is kept as an
internal note. Mail sent by machines (auto-replies, bounces, lists, our own) is recorded
and never answered, and never reopens anything. The same Message-ID is stored once, also
when posted twice at the same moment; the caller learns of it after the commit, never
before.

Files go through the same checks and storage as uploads; one that is refused does not
lose the email: a line in the message says what was not kept and why.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis

from supportdesk.customer_replies import CustomerMessage, CustomerReplies, TicketClosed
from supportdesk.db import Database, queries
from supportdesk.errors import AppError, NotFound, PayloadTooLarge
from supportdesk.inbound.parse import InboundEmail, InboundFile
from supportdesk.inputs import NewMessage, NewTicket
from supportdesk.messages import MessageService
from supportdesk.ratelimit import AckThrottle
from supportdesk.thread_tokens import ThreadTokens
from supportdesk.tickets import TicketService
from supportdesk.uploads import Upload, UploadLimits, display_name, read_upload
from supportdesk.vocabulary import is_manager

log = logging.getLogger("supportdesk.inbound")

_received_message = queries.received_message
_ticket_of_message_ids = queries.ticket_of_message_ids
_ticket_by_pid = queries.ticket_by_pid
_user_by_email = queries.user_by_email

_PID_IN_SUBJECT = re.compile(r"\[#([0-9]{6}-[0-9]{5,})\]")
NO_TEXT = "(This email had no text.)"
MAX_SUBJECT = 255

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Match:
    ticket: Row
    # Found by a signed token of ours: the sender had one of our emails about it.
    proven: bool


@dataclass(frozen=True)
class Received:
    outcome: str  # "created", "threaded" or "duplicate"
    ticket_pid: str
    message_id: int
    acknowledged: bool = False
    automatic: str | None = None


class InboundService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        tickets: TicketService,
        messages: MessageService,
        customers: CustomerReplies,
        *,
        support_address: str,
        tokens: ThreadTokens,
        limits: UploadLimits,
        ack_throttle: AckThrottle,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.redis = redis_client
        self.tickets = tickets
        self.messages = messages
        self.customers = customers
        self.support_address = support_address.lower()
        self.tokens = tokens
        self.limits = limits
        self.ack_throttle = ack_throttle
        self.clock = clock

    def receive(self, email: InboundEmail) -> Received:
        """Store one email where it belongs; a duplicate names what is already there."""
        with self.db.transaction() as conn:  # one read: seen before? where does it go?
            seen = _received_message(conn, message_id=email.message_id)
            if seen is not None:
                return Received("duplicate", seen["pid"], seen["id"])
            match = self._thread(conn, email)
            staff = _user_by_email(conn, email=email.sender)
        try:
            return self._receive(email, match, staff)
        except psycopg.errors.UniqueViolation:
            # The same Message-ID was stored by a concurrent call since we looked.
            known = self._known(email.message_id)
            if known is None:
                raise
            return known

    def _known(self, message_id: str) -> Received | None:
        with self.db.transaction() as conn:
            row = _received_message(conn, message_id=message_id)
        if row is None:
            return None
        return Received("duplicate", row["pid"], row["id"])

    def _receive(self, email: InboundEmail, match: Match | None, staff: Row | None) -> Received:
        automatic = email.automatic or self._from_ourselves(email)
        uploads, refused = self._uploads(email)
        body, full = self._bodies(email, refused)
        ticket = match.ticket if match else None
        if ticket is None or ticket["status"] == "CLOSED":
            return self._new_ticket(email, body, full, uploads, automatic, follows_up=ticket)
        as_staff = (
            staff is not None
            and staff["is_active"]
            and email.sender != ticket["requester_email"].lower()  # staff asking for help
        )
        if not as_staff:
            return self._customer_reply(ticket, email, body, full, uploads, automatic)
        if automatic:  # an out-of-office: for the team, never emailed to the customer
            return self._staff_post(ticket, staff, email, body, full, uploads, note=True)
        if not match.proven:  # a From line and a [#PID] anyone could write
            return self._new_ticket(email, body, full, uploads, None, follows_up=None)
        return self._staff_post(ticket, staff, email, body, full, uploads, note=False)

    # --- where it belongs ------------------------------------------------------------------

    def _thread(self, conn: psycopg.Connection, email: InboundEmail) -> Match | None:
        """The ticket this email answers, if its sender may write to it."""
        candidates: list[Row | None] = []
        ids = list(email.referenced_ids)
        if ids:
            candidates.append(_ticket_of_message_ids(conn, ids=ids))
        signed = [self.tokens.pid_in_message_id(i) for i in ids]
        signed += [self.tokens.pid_in_address(a) for a in email.recipients]
        pids = [*signed, *_PID_IN_SUBJECT.findall(email.subject)]
        candidates += [_ticket_by_pid(conn, pid=pid) for pid in dict.fromkeys(pids) if pid]
        for ticket in candidates:
            if ticket is not None and self._may_write(conn, ticket, email.sender):
                return Match(ticket, proven=ticket["pid"] in signed)
        return None

    @staticmethod
    def _may_write(conn: psycopg.Connection, ticket: Row, sender: str) -> bool:
        if sender == ticket["requester_email"].lower():
            return True
        staff = _user_by_email(conn, email=sender)
        return (
            staff is not None
            and staff["is_active"]
            and (is_manager(staff) or ticket["assigned_to"] == staff["id"])
        )

    def _from_ourselves(self, email: InboundEmail) -> str | None:
        local, _, domain = self.support_address.partition("@")
        sender_local, _, sender_domain = email.sender.partition("@")
        if sender_domain == domain and sender_local.split("+", 1)[0] == local:
            return "sent from our own address"
        return None

    # --- the three outcomes -----------------------------------------------------------------

    def _new_ticket(
        self,
        email: InboundEmail,
        body: str,
        full: str | None,
        uploads: list[Upload],
        automatic: str | None,
        *,
        follows_up: Row | None,
    ) -> Received:
        acknowledge = automatic is None and self.ack_throttle.allows(email.sender)
        new = NewTicket(
            name=email.sender_name,
            email=email.sender,
            subject=email.subject[:MAX_SUBJECT],
            body=body,
            priority="NORMAL",
            email_message_id=email.message_id,
            full_body=full,
        )
        with self.ack_throttle.given_back_on_failure(email.sender, acknowledge):
            ticket = self.tickets.create(
                new,
                channel="EMAIL",
                uploads=uploads,
                acknowledge=acknowledge,
                follows_up=follows_up,
            )
        known = self._known(email.message_id)
        assert known is not None  # just committed
        if automatic:
            log.info(
                "inbound %s opened %s, not acknowledged: %s",
                email.message_id,
                ticket["pid"],
                automatic,
            )
        return Received("created", ticket["pid"], known.message_id, acknowledge, automatic)

    def _staff_post(
        self,
        ticket: Row,
        staff: Row,
        email: InboundEmail,
        body: str,
        full: str | None,
        uploads: list[Upload],
        *,
        note: bool,
    ) -> Received:
        """A staff member answered from their inbox: a PUBLIC reply, emailed like one (or,
        from their autoresponder, an internal note)."""
        new = NewMessage(
            body,
            visibility="INTERNAL" if note else "PUBLIC",
            email_message_id=email.message_id,
            full_body=full,
        )
        try:
            posted = self.messages.post(staff, ticket["pid"], new, channel="EMAIL", uploads=uploads)
        except NotFound:  # no longer allowed to see it (unassigned meanwhile): its own ticket
            uploads, _ = self._uploads(email)  # the first ones were closed by the failed post
            automatic = email.automatic or self._from_ourselves(email)
            return self._new_ticket(email, body, full, uploads, automatic, follows_up=None)
        return Received("threaded", ticket["pid"], posted.message["id"], automatic=email.automatic)

    def _customer_reply(
        self,
        ticket: Row,
        email: InboundEmail,
        body: str,
        full: str | None,
        uploads: list[Upload],
        automatic: str | None,
    ) -> Received:
        new = CustomerMessage(
            body=body,
            channel="EMAIL",
            sender=email.sender,
            email_message_id=email.message_id,
            full_body=full,
            subject=email.subject,
            automatic=automatic,
        )
        try:
            message = self.customers.add(ticket["id"], new, uploads)
        except TicketClosed as closed:  # closed since we looked: as for any closed ticket
            uploads, _ = self._uploads(email)  # the first ones were closed by the failed add
            return self._new_ticket(email, body, full, uploads, automatic, follows_up=closed.ticket)
        return Received("threaded", ticket["pid"], message["id"], automatic=automatic)

    # --- what it says, and what came with it ------------------------------------------------

    def _bodies(self, email: InboundEmail, refused: list[str]) -> tuple[str, str | None]:
        """(the text to show, the whole text when different): trimmed of quoted history,
        with a line for each file that was not kept."""
        whole = email.text.strip()
        shown = email.display_text.strip()
        notes = "\n".join(refused)
        if notes:
            whole = f"{whole}\n\n{notes}".strip()
            shown = f"{shown}\n\n{notes}".strip()
        shown = shown or NO_TEXT
        return shown, (whole if whole and whole != shown else None)

    def _uploads(self, email: InboundEmail) -> tuple[list[Upload], list[str]]:
        """The email's files as checked uploads; a line for each one refused."""
        uploads: list[Upload] = []
        refused: list[str] = []
        for file in email.files:
            if len(uploads) >= self.limits.max_files:
                refused.append(
                    f"[{file.filename} was not kept: at most "
                    f"{self.limits.max_files} files are kept from one email.]"
                )
                continue
            try:
                upload = self._upload(file)
            except AppError as error:
                reason = next(iter(error.details.values()), error.message)
                refused.append(f"[Not kept: {reason}]")
                continue
            if upload is None:
                refused.append(f"[Not kept: {display_name(file.filename)} was empty.]")
            else:
                uploads.append(upload)
        return uploads, refused

    def _upload(self, file: InboundFile) -> Upload | None:
        if file.original:
            # The whole message, which could not be read: kept whatever its size (the
            # request's own limit bounds it), and only ever downloaded.
            return _forwarded_upload(file, None)
        if file.content_type == "message/rfc822":
            # A forwarded message: its type is its place in the MIME tree, not a guess; it
            # is only ever downloaded (attachment, nosniff), never shown.
            return _forwarded_upload(file, self.limits.max_bytes)
        return read_upload(_FilePart(file), self.limits.max_bytes, empty_ok=True)


class _FilePart:
    """An email's file, shaped like a multipart part for `read_upload`."""

    def __init__(self, file: InboundFile):
        self.filename = file.filename
        self.content_type = file.content_type
        self.stream = io.BytesIO(file.data)


def _forwarded_upload(file: InboundFile, max_bytes: int | None) -> Upload | None:
    if not file.data:
        return None
    name = display_name(file.filename)
    if max_bytes is not None and len(file.data) > max_bytes:
        raise PayloadTooLarge(details={"attachments": f"{name} is too large."})
    spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
    spool.write(file.data)
    spool.seek(0)
    return Upload(
        name, file.content_type, len(file.data), hashlib.sha256(file.data).hexdigest(), spool
    )
