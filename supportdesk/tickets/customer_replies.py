"""The customer writes again, by email or on their view of the ticket (`/t/<pid>`).

One path for both: the message and its files, an event (EMAIL_RECEIVED or
MESSAGE_ADDED), and, for a person's message (not an autoresponder's), a RESOLVED or
WAITING ticket reopened by the customer and the assignee and followers told
(tickets/notifications.py), and the people it copies recorded as the ticket's participants
(section 11). A participant writes as the customer does, with their own address as the
author's. An email that found its
ticket by the `[#PID]` in its subject alone is kept and marked, and changes nothing else:
anyone who knows the number can write that subject and the requester's From line. The
customer's view shows the ticket's status and its PUBLIC thread, never an internal note.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Conflict, NotFound
from supportdesk.core.ratelimit import CustomerReplyThrottle
from supportdesk.files.uploads import Upload
from supportdesk.mail.outbound.compose import EmailComposer
from supportdesk.mail.outbound.outbox import push_after_commit
from supportdesk.tickets.attachments import AttachmentService
from supportdesk.tickets.notifications import Notifier
from supportdesk.tickets.participants import Copying, Person, is_participant, participants
from supportdesk.tickets.service import apply_changes
from supportdesk.tickets.timeline import record_event

_lock_ticket = queries.lock_ticket
_ticket_by_pid = queries.ticket_by_pid
_insert_message = queries.insert_message
_touch_ticket = queries.touch_ticket
_ticket_thread = queries.ticket_thread
_thread_attachments = queries.thread_attachments

Row = Mapping[str, Any]
log = logging.getLogger("supportdesk.tickets.customer_replies")


class NoLongerCopied(Conflict):
    """A participant's email, found in the ticket's thread, but they were removed from the
    ticket before it was stored: it joins nothing (the inbound service opens a ticket)."""

    def __init__(self, ticket: Row):
        super().__init__("The sender is no longer copied on this ticket.")
        self.ticket = ticket


class TicketClosed(Conflict):
    """A CLOSED ticket takes no more messages from its customer (one that writes anew
    opens a follow-up ticket)."""

    def __init__(self, ticket: Row):
        super().__init__("This request is closed; write to us by email to open a new one.")
        self.ticket = ticket


@dataclass(frozen=True)
class CustomerMessage:
    """What the customer sent: by email (with its Message-ID and whole text) or the web."""

    body: str
    channel: str  # EMAIL or WEB
    sender: str
    email_message_id: str | None = None
    full_body: str | None = None
    html_body: str | None = None  # its HTML, sanitized, for the sandboxed frame
    subject: str | None = None
    automatic: str | None = None  # why a machine sent it: recorded, changes nothing
    # Found its ticket by a [#PID] in the subject, without a header or token of ours:
    # recorded and marked, changes nothing.
    matched_by_subject_only: bool = False
    # By email: whether DMARC authenticated the sender's domain (pass, fail, none). The
    # inbound service never threads a fail; stored here to be shown.
    sender_auth: str = "none"
    # By email: the sender is one of the ticket's participants, not its requester (checked
    # again under the ticket's lock: one removed meanwhile no longer writes there).
    from_participant: bool = False
    # The people of its To and Cc: copied on the ticket (section 11) when a person wrote it
    # in answer to our email (reopens_and_notifies), never by a machine or the subject alone.
    copied: tuple[Person, ...] = ()

    @property
    def reopens_and_notifies(self) -> bool:
        """Whether it may reopen the ticket and tell the assignee: a person wrote it, and
        it answers one of our emails (or came through the customer's own link)."""
        return self.automatic is None and not self.matched_by_subject_only


@dataclass(frozen=True)
class PublicThread:
    ticket: Row
    messages: list[Row]
    attachments: Mapping[int, list[Row]]


class CustomerReplies:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        attachments: AttachmentService,
        composer: EmailComposer,
        throttle: CustomerReplyThrottle,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        copying: Copying,
        notifier: Notifier,
    ):
        self.db = db
        self.redis = redis_client
        self.attachments = attachments
        self.composer = composer
        self.throttle = throttle
        self.clock = clock
        self.copying = copying
        # Tells the assignee and the followers (tickets/notifications.py).
        self.notifier = notifier

    def reply_on_web(
        self, ticket: Row, body: str, uploads: Sequence[Upload], client_address: str
    ) -> Row:
        """The customer's reply on their view of the ticket, within its limits per ticket
        and per client address (RateLimited past them)."""
        try:
            self.throttle.attempt(ticket["pid"], client_address)
        except redis.RedisError as ex:  # fail open: the reply is worth more than the limit
            log.warning("customer reply limit not checked, Redis unavailable: %r", ex)
        new = CustomerMessage(body, "WEB", ticket["requester_email"])
        return self.add(ticket["id"], new, uploads)

    def add(self, ticket_id: int, new: CustomerMessage, uploads: Sequence[Upload] = ()) -> Row:
        """The customer's message on their ticket, in one transaction; emails after it."""
        outbox_ids: list[int] = []
        with (
            self.attachments.stashed(ticket_id, uploads) as stored,
            self.db.transaction() as conn,
        ):
            ticket = _lock_ticket(conn, id=ticket_id)
            now = self.clock()  # read under the lock: events are timed in the order they happen
            if ticket["status"] == "CLOSED":
                raise TicketClosed(ticket)
            if new.from_participant and not is_participant(conn, ticket_id, new.sender):
                raise NoLongerCopied(ticket)
            message = _insert_message(
                conn,
                ticket_id=ticket_id,
                author="CUSTOMER",
                author_user_id=None,
                author_email=new.sender,
                visibility="PUBLIC",
                channel=new.channel,
                body=new.body,
                full_body=new.full_body,
                html_body=new.html_body,
                email_message_id=new.email_message_id,
                created_at=now,
                matched_by_subject_only=new.matched_by_subject_only,
                sender_auth=new.sender_auth,
            )
            kind, data = self._event(new, message)
            record_event(conn, ticket_id, kind, actor=None, now=now, data=data)
            self.attachments.record(conn, ticket_id, message["id"], stored, actor=None, now=now)
            if new.reopens_and_notifies:
                if new.copied:
                    self.copying.add(conn, ticket, new.copied, actor=None, now=now)
                if ticket["status"] in ("RESOLVED", "WAITING"):
                    ticket = apply_changes(conn, ticket, {"status": "OPEN"}, actor=None, now=now)
                writer = ticket["requester_name"]
                if new.from_participant:  # a colleague copied on it wrote, not the requester
                    copied = {p["email"].lower(): p for p in participants(conn, ticket_id)}
                    writer = (copied.get(new.sender.lower()) or {}).get("name") or new.sender
                outbox_ids += self.notifier.customer_replied(
                    conn, ticket, new.body, now, writer=writer
                )
            _touch_ticket(conn, id=ticket_id, now=now)
        self.db.after_commit(push_after_commit, self.redis, outbox_ids)
        return message

    @staticmethod
    def _event(new: CustomerMessage, message: Row) -> tuple[str, dict[str, Any]]:
        if new.channel != "EMAIL":
            return "MESSAGE_ADDED", {"message_id": message["id"], "visibility": "PUBLIC"}
        data = {
            "message_id": message["id"],
            "from": new.sender,
            "subject": new.subject,
            "email_message_id": new.email_message_id,
        }
        if new.automatic:
            data["automatic"] = new.automatic
        if new.matched_by_subject_only:
            data["matched_by_subject_only"] = True
        if new.from_participant:
            data["participant"] = True
        return "EMAIL_RECEIVED", data

    def public_thread(self, pid: str) -> PublicThread:
        """The ticket as its customer sees it: the PUBLIC messages of people, oldest first."""
        with self.db.transaction() as conn:
            ticket = _ticket_by_pid(conn, pid=pid)
            if ticket is None:
                raise NotFound("This link is not valid.")
            messages = [
                m
                for m in _ticket_thread(conn, ticket_id=ticket["id"])
                if m["visibility"] == "PUBLIC" and m["author"] in ("CUSTOMER", "STAFF")
            ]
            shown = {m["id"] for m in messages}
            files: dict[int, list[Row]] = defaultdict(list)
            for attachment in _thread_attachments(conn, ticket_id=ticket["id"]):
                if attachment["message_id"] in shown:
                    files[attachment["message_id"]].append(attachment)
        return PublicThread(ticket, messages, files)
