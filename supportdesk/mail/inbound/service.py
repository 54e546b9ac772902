"""Inbound email into tickets (DESIGN.md section 6): threading, duplicates, loops, status.

A message threads into a ticket, in this order: by a Message-ID it refers to (one we sent
or received, or one of ours whose signed token names the ticket), by the signed token of
the plus-address it was sent to, by a `[#PID]` in its subject. The match counts only for
the ticket's requester or one of its participants (the people copied on it, section 11),
or for a staff member who may see the ticket and answers one of
our notices to staff (its STAFF token, thread_tokens): a forged header never puts text
into someone else's ticket; it opens a new ticket instead, as does a message that matches
nothing. A staff address without that proof is a stranger, whatever its headers say
(every customer holds the CUSTOMER tokens of their own ticket, and anyone can write a
From line). A reply to a CLOSED ticket opens a new one that links it.

The people in the To and Cc of a new ticket's email, and of a person's reply that answers
our email, become its participants (never our own addresses, nor the requester; at most
MAX_PARTICIPANTS); never those of a machine's email or of an unverified sender's.

Customer replies reopen a RESOLVED or WAITING ticket and notify its assignee, unless all
that tied them to the ticket was the `[#PID]` in the subject: such a message is kept and
marked, and changes nothing. A staff member's reply is a PUBLIC staff message, emailed to
the requester like any other; a staff member's auto-reply is kept as an internal note.
Mail sent by machines (auto-replies, bounces, lists, our own) is recorded and never
answered, and never reopens anything. The same Message-ID is stored once, also when posted
twice at the same moment; the caller learns of it after the commit, never before.

A staff member's forward of a customer's email, when they prove who they are, opens the
customer's ticket instead (forwarding.py, DESIGN.md section 11).

Files go through the same checks and storage as uploads; one that is refused does not
lose the email: a line in the message says what was not kept and why.

An email with no usable sender address (the parser found none in From, Reply-To, Sender or
Return-Path) is never refused: it is kept in the quarantine, which ADMINs see (quarantine.py),
and the way in answers 2xx. Here, in the one path every way in takes, so that none can skip
it; the same Message-ID is kept once there too. So is an email from a blocked sender (its
address, or its domain: tickets/spam.py), which never reaches a ticket nor is answered.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg
import redis

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import AppError, NotFound, PayloadTooLarge
from supportdesk.core.ratelimit import AckThrottle
from supportdesk.core.vocabulary import MAX_BODY, MAX_SUBJECT, PID_IN_SUBJECT
from supportdesk.files.uploads import Upload, UploadLimits, display_name, read_upload
from supportdesk.mail.inbound.forwarding import ForwardsIn
from supportdesk.mail.inbound.parse import RFC822, InboundEmail, InboundFile, Original
from supportdesk.mail.inbound.sender_auth.verdicts import FAIL
from supportdesk.mail.outbound.thread_tokens import ThreadTokens, Token
from supportdesk.tickets.access import may_see, with_reach
from supportdesk.tickets.customer_replies import (
    CustomerMessage,
    CustomerReplies,
    NoLongerCopied,
    TicketClosed,
)
from supportdesk.tickets.inputs import NewMessage, NewTicket
from supportdesk.tickets.merging import final_ticket
from supportdesk.tickets.messages import MessageService
from supportdesk.tickets.participants import Person, is_participant
from supportdesk.tickets.service import TicketService
from supportdesk.tickets.spam import blocking_pattern

log = logging.getLogger("supportdesk.mail.inbound")

_received_message = queries.received_message
_ticket_of_message_ids = queries.ticket_of_message_ids
_ticket_by_pid = queries.ticket_by_pid
_user_by_email = queries.user_by_email
_is_mailbox_address = queries.is_mailbox_address
_quarantine_email = queries.quarantine_email
_quarantined_message = queries.quarantined_message

NO_TEXT = "(This email had no text.)"
WHOLE_TEXT_FILE = "email-text.txt"
NO_SENDER = "No sender address: none in From, Reply-To, Sender or Return-Path."
BLOCKED_SENDER = "blocked sender"
TEXT_CUT = (
    f"[This email is longer than {MAX_BODY:,} characters: the text is cut here, and kept "
    f"whole in the attached {WHOLE_TEXT_FILE}.]"
)

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Match:
    """The ticket an email belongs to, and as whom its sender writes there."""

    ticket: Row
    # The staff member writing as staff (a STAFF token of this ticket proved it), or None:
    # the requester writes.
    staff: Row | None = None
    # Nothing but the [#PID] in the subject tied it to the ticket.
    by_subject_only: bool = False
    # The sender is one of the ticket's participants, not its requester.
    participant: bool = False


class Contents(NamedTuple):
    body: str
    full: str | None
    uploads: list[Upload]


@dataclass(frozen=True)
class Received:
    outcome: str  # "created", "threaded", "duplicate" or "quarantined"
    ticket_pid: str | None  # None: kept in the quarantine, no ticket
    message_id: int | None
    acknowledged: bool = False
    automatic: str | None = None
    # The quarantine's row that holds it, and why it is there (no ticket was opened).
    quarantine_id: int | None = None
    reason: str | None = None


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
        forwards: ForwardsIn,
        agents_see_unassigned: bool,
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
        # The desk's reach for a staff member answering by email, as for one in the pages
        # (tickets/access.py).
        self.agents_see_unassigned = agents_see_unassigned
        self.clock = clock
        self.forwards = forwards  # staff forwarding a customer's email (forwarding.py)

    def receive(
        self, email: InboundEmail, *, mailbox_id: int | None = None, vouched: bool = False
    ) -> Received:
        """Store one email where it belongs; a duplicate names what is already there. A
        ticket it opens remembers `mailbox_id`, the mailbox it was fetched from. `vouched`:
        an ADMIN named its sender (from the quarantine), which a block does not overrule."""
        with self.db.transaction() as conn:  # one read: seen before? where does it go?
            seen = _received_message(conn, message_id=email.message_id)
            if seen is not None:
                return Received("duplicate", seen["pid"], seen["id"])
            kept = _quarantined_message(conn, message_id=email.message_id)
            if kept is not None:
                return _in_quarantine("duplicate", kept)
            if not email.sender:
                return self._quarantine(
                    conn, email, NO_SENDER, mailbox_id=mailbox_id, sender_auth=email.sender_auth
                )
            blocked = None if vouched else blocking_pattern(conn, email.sender)
            if blocked is not None:
                reason = f"{BLOCKED_SENDER} ({blocked})"
                return self._quarantine(
                    conn, email, reason, mailbox_id=mailbox_id, sender_auth=email.sender_auth
                )
            match = self._thread(conn, email)
        try:
            return self._receive(email, match, mailbox_id)
        except psycopg.errors.UniqueViolation:
            # The same Message-ID was stored by a concurrent call since we looked.
            known = self._known(email.message_id)
            if known is None:
                raise
            return known

    def _quarantine(
        self,
        conn: psycopg.Connection,
        email: InboundEmail,
        reason: str,
        *,
        mailbox_id: int | None = None,
        sender_auth: str = "none",
    ) -> Received:
        """Keep `email` in the quarantine (DESIGN.md section 6), once per Message-ID."""
        original = email.original or Original(email.text.encode("utf-8"), RFC822)
        kept = _quarantine_email(
            conn,
            mailbox_id=mailbox_id,
            from_header=email.from_header,
            subject=email.subject[:MAX_SUBJECT],
            reason=reason,
            email_message_id=email.message_id,
            raw=original.data,
            raw_type=original.content_type,
            sender_auth=sender_auth,
        )
        if kept is None:  # kept by a concurrent call since we looked (it waited for it)
            kept = _quarantined_message(conn, message_id=email.message_id)
            return _in_quarantine("duplicate", kept)
        log.warning("inbound %s kept in the quarantine: %s", email.message_id, reason)
        return _in_quarantine("quarantined", kept)

    def _known(self, message_id: str) -> Received | None:
        with self.db.transaction() as conn:
            row = _received_message(conn, message_id=message_id)
        if row is None:
            return None
        return Received("duplicate", row["pid"], row["id"])

    def _receive(
        self, email: InboundEmail, match: Match | None, mailbox_id: int | None = None
    ) -> Received:
        # A customer's email, forwarded in by staff who proved who they are?
        forwarder = self.forwards.forwarder(email, match.staff if match else None)
        if forwarder is not None:
            ticket = self.forwards.open_ticket(email, forwarder, self._read, mailbox_id)
            known = self._known(email.message_id)
            assert known is not None  # just committed
            return Received("created", ticket["pid"], known.message_id)
        automatic = email.automatic or self._from_ourselves(email)
        contents = self._read(email)
        body, full, uploads = contents
        ticket = match.ticket if match else None
        if match is None or match.ticket["status"] == "CLOSED":
            return self._new_ticket(
                email, body, full, uploads, automatic, follows_up=ticket, mailbox_id=mailbox_id
            )
        if match.staff is not None:
            # Kept among staff, never emailed to the customer: an out-of-office, and a reply
            # that carries an email as a file (one not read whole, kept as message.eml, or
            # a forwarded one): an email to staff holds its STAFF token in its headers.
            note = automatic is not None or any(
                f.content_type == "message/rfc822" for f in email.files
            )
            return self._staff_post(match.ticket, match.staff, email, contents, note, mailbox_id)
        return self._customer_reply(match, email, body, full, uploads, automatic, mailbox_id)

    # --- where it belongs ------------------------------------------------------------------

    def _thread(self, conn: psycopg.Connection, email: InboundEmail) -> Match | None:
        """The ticket this email answers, if its sender may write to it, and as whom."""
        if email.sender_auth == FAIL:
            # DMARC says its From domain did not send it (DESIGN.md section 10): it never
            # joins, nor reopens, a ticket; it opens its own, marked by its sender_auth.
            return None
        if email.sender not in email.from_header.lower():
            # The address came from Reply-To, Sender or Return-Path, as no From line names
            # it: DMARC vouches for the From domain alone, and these are anyone's to write,
            # so such an email opens a ticket of its own rather than join someone's.
            return None
        ids = list(email.referenced_ids)
        tokens = [self.tokens.in_message_id(i) for i in ids]
        tokens += [self.tokens.in_address(a) for a in email.recipients]
        signed: dict[str, Token] = {}  # each ticket's strongest token: STAFF over CUSTOMER
        for token in filter(None, tokens):
            if token.audience == "STAFF" or token.pid not in signed:
                signed[token.pid] = token
        known = _ticket_of_message_ids(conn, ids=ids) if ids else None
        pids = dict.fromkeys([*signed, *PID_IN_SUBJECT.findall(email.subject)])
        candidates = [known, *(_ticket_by_pid(conn, pid=pid) for pid in pids)]
        staff = None
        if any(t.audience == "STAFF" for t in signed.values()):
            staff = _user_by_email(conn, email=email.sender)
            if staff is not None:
                staff = with_reach(staff, agents_see_unassigned=self.agents_see_unassigned)
        for found in filter(None, candidates):
            token = signed.get(found["pid"])
            ticket = final_ticket(conn, found)  # a merged ticket's mail lands in its target
            requester = email.sender == ticket["requester_email"].lower()
            if requester or is_participant(conn, ticket["id"], email.sender):
                in_thread = known is not None and known["id"] == found["id"]
                subject_only = token is None and not in_thread
                return Match(ticket, by_subject_only=subject_only, participant=not requester)
            if token is not None and token.audience == "STAFF" and _may_see(staff, ticket):
                return Match(ticket, staff=staff)
        return None

    @staticmethod
    def _copied(email: InboundEmail, automatic: str | None) -> tuple[Person, ...]:
        """The people of its To and Cc who may become participants: none from a machine
        (or from ourselves), none from a sender DMARC says is forged."""
        if automatic is not None or email.sender_auth == FAIL:
            return ()
        return tuple(Person(address, name) for name, address in email.copied)

    def _from_ourselves(self, email: InboundEmail) -> str | None:
        """MAIL_FROM's address or a company mailbox's, plus-addressed or not: mail from
        it is recorded and never answered (a loop between two of our own addresses)."""
        local, _, domain = self.support_address.partition("@")
        sender_local, _, sender_domain = email.sender.partition("@")
        bare = f"{sender_local.split('+', 1)[0]}@{sender_domain}"
        if sender_domain == domain and sender_local.split("+", 1)[0] == local:
            return "sent from our own address"
        with self.db.transaction() as conn:
            if _is_mailbox_address(conn, address=bare):
                return "sent from one of our mailboxes"
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
        mailbox_id: int | None = None,
    ) -> Received:
        # An unverified sender is not acknowledged: the address was most likely forged,
        # and its owner would be sent mail about a request they never made.
        answerable = automatic is None and email.sender_auth != FAIL
        acknowledge = answerable and self.ack_throttle.allows(email.sender)
        if answerable and not acknowledge:
            log.info("inbound %s: not acknowledged, a budget is spent", email.message_id)
        new = NewTicket(
            name=email.sender_name,
            email=email.sender,
            subject=email.subject[:MAX_SUBJECT],
            body=body,
            priority="NORMAL",
            email_message_id=email.message_id,
            full_body=full,
            html_body=email.html or None,
            sender_auth=email.sender_auth,
            mailbox_id=mailbox_id,
        )
        with self.ack_throttle.given_back_on_failure(email.sender, acknowledge):
            ticket = self.tickets.create(
                new,
                channel="EMAIL",
                uploads=uploads,
                acknowledge=acknowledge,
                follows_up=follows_up,
                copied=self._copied(email, automatic),
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
        contents: Contents,
        note: bool,
        mailbox_id: int | None,
    ) -> Received:
        """A staff member answered from their inbox: a PUBLIC reply, emailed like one (or,
        as `note`, an internal one)."""
        body, full, uploads = contents
        new = NewMessage(
            body,
            visibility="INTERNAL" if note else "PUBLIC",
            email_message_id=email.message_id,
            full_body=full,
            html_body=email.html or None,
            sender_auth=email.sender_auth,
        )
        try:
            posted = self.messages.post(staff, ticket["pid"], new, channel="EMAIL", uploads=uploads)
        except NotFound:  # no longer allowed to see it (unassigned meanwhile): its own ticket
            uploads = self._read(email).uploads  # the first ones were closed by the failed post
            automatic = email.automatic or self._from_ourselves(email)
            return self._new_ticket(
                email, body, full, uploads, automatic, follows_up=None, mailbox_id=mailbox_id
            )
        return Received("threaded", ticket["pid"], posted.message["id"], automatic=email.automatic)

    def _customer_reply(
        self,
        match: Match,
        email: InboundEmail,
        body: str,
        full: str | None,
        uploads: list[Upload],
        automatic: str | None,
        mailbox_id: int | None,
    ) -> Received:
        ticket = match.ticket
        new = CustomerMessage(
            body=body,
            channel="EMAIL",
            sender=email.sender,
            email_message_id=email.message_id,
            full_body=full,
            html_body=email.html or None,
            subject=email.subject,
            automatic=automatic,
            matched_by_subject_only=match.by_subject_only,
            sender_auth=email.sender_auth,
            from_participant=match.participant,
            copied=self._copied(email, automatic),
        )
        try:
            message = self.customers.add(ticket["id"], new, uploads)
        except NoLongerCopied:  # removed since we looked: as for any stranger, its own ticket
            uploads = self._read(email).uploads  # the first ones were closed by the failed add
            return self._new_ticket(
                email, body, full, uploads, automatic, follows_up=None, mailbox_id=mailbox_id
            )
        except TicketClosed as closed:  # closed since we looked: as for any closed ticket
            uploads = self._read(email).uploads  # the first ones were closed by the failed add
            return self._new_ticket(
                email,
                body,
                full,
                uploads,
                automatic,
                follows_up=closed.ticket,
                mailbox_id=mailbox_id,
            )
        return Received("threaded", ticket["pid"], message["id"], automatic=automatic)

    # --- what it says, and what came with it ------------------------------------------------

    def _read(self, email: InboundEmail) -> Contents:
        """What to store: the text to show (trimmed of quoted history) and the whole text
        when different, each with a line for each file that was not kept, and the files.
        A text longer than a message may be (MAX_BODY, as on every other way in) is cut,
        and kept whole as a file beside them: pages render in bounded time, and nothing
        is lost."""
        uploads, notes = self._uploads(email)
        whole, whole_cut = _fitted(email.text.strip(), notes)
        shown, shown_cut = _fitted(email.display_text.strip(), notes)
        if whole_cut or shown_cut:
            uploads.append(_whole_text(email.text.strip()))
        shown = shown or NO_TEXT
        return Contents(shown, whole if whole and whole != shown else None, uploads)

    def _uploads(self, email: InboundEmail) -> tuple[list[Upload], list[str]]:
        """The email's files as checked uploads; a line for each one refused."""
        uploads: list[Upload] = []
        refused: list[str] = []
        for file in email.files:
            if len(uploads) >= self.limits.max_files and not file.original:
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


def _in_quarantine(outcome: str, kept: Row) -> Received:
    return Received(outcome, None, None, quarantine_id=kept["id"], reason=kept["reason"])


def _may_see(staff: Row | None, ticket: Row) -> bool:
    """An active staff member who may see the ticket (DESIGN.md sections 5 and 12)."""
    return staff is not None and staff["is_active"] and may_see(staff, ticket)


def _fitted(text: str, notes: list[str]) -> tuple[str, bool]:
    """`text` with the `notes` below it, within MAX_BODY: cut, saying so, if it must be;
    and whether it was."""
    if len(text) + len(_appended(notes)) <= MAX_BODY:
        return (text + _appended(notes)).strip(), False
    suffix = _appended([TEXT_CUT, *notes])
    return (text[: MAX_BODY - len(suffix)].rstrip() + suffix).strip(), True


def _appended(notes: list[str]) -> str:
    return "\n\n" + "\n".join(notes) if notes else ""


def _whole_text(text: str) -> Upload:
    """The whole text of an email as a UTF-8 text file: ours, not the sender's, so it
    skips the checks of what people send (it is served as a download, as every file)."""
    return _spooled(WHOLE_TEXT_FILE, "text/plain", text.encode("utf-8"))


def _spooled(name: str, content_type: str, data: bytes) -> Upload:
    spool = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
    spool.write(data)
    spool.seek(0)
    return Upload(name, content_type, len(data), hashlib.sha256(data).hexdigest(), spool)


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
    return _spooled(name, file.content_type, file.data)
