"""The conversation of a ticket: customer messages, staff replies and internal notes.

A PUBLIC staff reply is emailed to the requester, Cc the ticket's participants (through the
outbox, threaded under the earlier emails of the conversation); its `cc` replaces the
participants from then on (section 11). An INTERNAL note never reaches a customer (it is
mailed only to the staff it mentions, `@ana`: tickets/notifications.py). A reply on an
OPEN ticket moves it to IN_PROGRESS; the same request may set another status instead
("reply and mark waiting"). The collision guard: the author says which message they saw
last, and the answer counts the messages that arrived since (the reply is saved anyway).
An AGENT's reply to a ticket nobody has taken takes it (tickets/access.py says why).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound
from supportdesk.core.vocabulary import is_manager
from supportdesk.files.uploads import Upload
from supportdesk.mail.outbound.compose import EmailComposer, Quote
from supportdesk.mail.outbound.outbox import push_after_commit, queue_email, thread_message_ids
from supportdesk.tickets.access import lock_visible_ticket, refuse_if_merged, visible_ticket
from supportdesk.tickets.assignment import take_locked
from supportdesk.tickets.attachments import AttachmentService, public_attachment
from supportdesk.tickets.inputs import NewMessage
from supportdesk.tickets.notifications import Notifier
from supportdesk.tickets.participants import Copying, Person, participants
from supportdesk.tickets.saved_reply_files import SavedReplyFiles
from supportdesk.tickets.service import apply_changes
from supportdesk.tickets.timeline import record_event

_insert_message = queries.insert_message
_ticket_thread = queries.ticket_thread
_thread_attachments = queries.thread_attachments
_count_messages_after = queries.count_messages_after
_message_html = queries.message_html
_touch_ticket = queries.touch_ticket
_previous_public_message = queries.previous_public_message

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Thread:
    ticket: Row
    messages: list[Row]
    attachments: Mapping[int, list[Row]]  # message id -> its files

    @property
    def last_message_id(self) -> int | None:
        return self.messages[-1]["id"] if self.messages else None


@dataclass(frozen=True)
class PostedMessage:
    message: Row
    ticket: Row
    newer_messages: int  # messages that arrived after the one the author saw last
    attachments: Sequence[Row] = ()


def author_name(message: Row, ticket: Row) -> str:
    if message["author"] == "CUSTOMER":
        if from_requester(message, ticket):
            return ticket["requester_name"]
        # A participant (section 11): their name while they are copied, else their address.
        return message.get("author_name") or message["author_email"]
    return message.get("author_name") or "System"


def from_requester(message: Row, ticket: Row) -> bool:
    """A customer's message written by the requester (not by a participant)."""
    email = message["author_email"]
    return email is None or email.lower() == ticket["requester_email"].lower()


def whole_text(message: Row) -> str | None:
    """The message's whole text when it differs from its trimmed `body`, else None."""
    full = message.get("full_body")
    return full if full and full != message["body"] else None


def html_available(message: Row) -> bool:
    """Whether the message keeps its email's sanitized HTML (a thread's rows say so
    without reading it; a row just written holds it)."""
    if "html_available" in message:
        return bool(message["html_available"])
    return message.get("html_body") is not None


def public_message(message: Row, ticket: Row, attachments: Sequence[Row]) -> dict[str, Any]:
    return {
        "id": message["id"],
        "author": message["author"],
        "author_name": author_name(message, ticket),
        "author_email": message["author_email"],
        "visibility": message["visibility"],
        "channel": message["channel"],
        "body": message["body"],
        # The whole email as received, when the trimmed body leaves some of it out.
        "full_body": whole_text(message),
        "matched_by_subject_only": message["matched_by_subject_only"],
        "sender_auth": message["sender_auth"],
        # The email's HTML is kept, sanitized: served by .../messages/{id}/original.
        "html_available": html_available(message),
        "created_at": message["created_at"].isoformat(),
        "attachments": [public_attachment(a) for a in attachments],
    }


class MessageService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        composer: EmailComposer,
        attachments: AttachmentService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        copying: Copying,
        notifier: Notifier,
        saved_files: SavedReplyFiles,
    ):
        self.db = db
        self.redis = redis_client
        self.composer = composer
        self.attachments = attachments
        self.clock = clock
        self.copying = copying
        # Tells the staff an internal note mentions (tickets/notifications.py).
        self.notifier = notifier
        # Files of saved replies a message may attach (section 12).
        self.saved_files = saved_files

    def thread(self, viewer: Row, pid: str) -> Thread:
        """The ticket and its messages, oldest first, with their files."""
        with self.db.transaction() as conn:
            ticket = visible_ticket(conn, viewer, pid)
            messages = _ticket_thread(conn, ticket_id=ticket["id"])
            files: dict[int, list[Row]] = defaultdict(list)
            for attachment in _thread_attachments(conn, ticket_id=ticket["id"]):
                files[attachment["message_id"]].append(attachment)
        return Thread(ticket, messages, files)

    def original_html(self, viewer: Row, pid: str, message_id: int) -> str:
        """The sanitized HTML of a message of a ticket the viewer may see; NotFound for a
        ticket they may not see, a message of another ticket, or one without HTML."""
        with self.db.transaction() as conn:
            ticket = visible_ticket(conn, viewer, pid)
            html = _message_html(conn, ticket_id=ticket["id"], message_id=message_id)
        if html is None:
            raise NotFound("This message has no HTML to show.")
        return str(html)

    def post(
        self,
        author: Row,
        pid: str,
        new: NewMessage,
        *,
        channel: str,
        uploads: Sequence[Upload] = (),
    ) -> PostedMessage:
        """A staff member's reply or note with its files, their events, the email of a reply
        and the status it implies, in one transaction; the email is queued after commit.
        Files are stored first (under the ticket, found without a lock) and deleted again
        if the transaction fails; the chosen files of saved replies with them, each read
        back and stored again as if uploaded."""
        outbox_ids: list[int] = []
        chosen = new.saved_reply_files
        ticket_id = self.ticket_id(author, pid) if uploads or chosen else 0
        if chosen:
            uploads = [*uploads, *self.saved_files.copies(author, chosen, already=len(uploads))]
        with self.attachments.stashed(ticket_id, uploads) as stored, self.db.transaction() as conn:
            ticket = lock_visible_ticket(conn, author, pid)
            refuse_if_merged(conn, ticket)
            now = self.clock()  # read under the lock: events are timed in the order they happen
            if not new.is_note and ticket["assigned_to"] is None and not is_manager(author):
                # An AGENT answering a ticket nobody has taken (AGENTS_SEE_UNASSIGNED) takes
                # it: whoever answers the customer owns the follow-up (tickets/access.py).
                ticket = take_locked(conn, ticket, author, now)
            newer = (
                _count_messages_after(conn, ticket_id=ticket["id"], after=new.last_seen_message_id)
                if new.last_seen_message_id is not None
                else 0
            )
            if new.cc is not None:  # a reply's Cc: the participants from now on (section 11)
                self.copying.check(conn, ticket, new.cc, "cc")
                self.copying.replace(conn, ticket, map(Person, new.cc), actor=author, now=now)
            message = _insert_message(
                conn,
                ticket_id=ticket["id"],
                author="STAFF",
                author_user_id=author["id"],
                author_email=author["email"],
                visibility=new.visibility,
                channel=channel,
                body=new.body,
                full_body=new.full_body,
                html_body=new.html_body,
                email_message_id=new.email_message_id,
                created_at=now,
                matched_by_subject_only=False,
                sender_auth=new.sender_auth,
            )
            record_event(
                conn,
                ticket["id"],
                "NOTE_ADDED" if new.is_note else "MESSAGE_ADDED",
                actor=author,
                now=now,
                data={"message_id": message["id"], "visibility": new.visibility},
            )
            files = self.attachments.record(
                conn, ticket["id"], message["id"], stored, actor=author, now=now
            )
            if not new.is_note:
                outbox_ids.append(self._email_reply(conn, ticket, message, author, files, now))
            elif new.email_message_id is None:  # written on the desk, not an email kept
                outbox_ids += self.notifier.note_added(conn, ticket, new.body, author, now)
            status = status_after(new, ticket)
            if status is not None:
                ticket = apply_changes(conn, ticket, {"status": status}, actor=author, now=now)
            if ticket["updated_at"] != now:
                _touch_ticket(conn, id=ticket["id"], now=now)
            result = visible_ticket(conn, author, pid)
        self.db.after_commit(push_after_commit, self.redis, outbox_ids)
        return PostedMessage(message | {"author_name": author["name"]}, result, newer, files)

    def ticket_id(self, viewer: Row, pid: str) -> int:
        """The id of a ticket the viewer may see (NotFound otherwise)."""
        with self.db.transaction() as conn:
            return int(visible_ticket(conn, viewer, pid)["id"])

    def _email_reply(
        self,
        conn: psycopg.Connection,
        ticket: Row,
        message: Row,
        author: Row,
        files: Sequence[Row],
        now: datetime,
    ) -> int:
        """The reply's email to the requester, threaded under the earlier ones, with its
        files (attached, or signed links when they are too large together) and the previous
        public message quoted (QUOTE_HISTORY); its outbox id."""
        thread = thread_message_ids(conn, ticket["id"])
        links = [
            {
                "id": f["id"],
                "filename": f["filename"],
                "size": f["size_bytes"],
                "url": self.attachments.signed_link(f["id"]),
            }
            for f in files
        ]
        quote = quoted_message(conn, message) if self.composer.quote_history else None
        email = self.composer.staff_reply(
            ticket, message["body"], author, thread, links, quote=quote
        )
        # Copied: the ticket's participants as they are now (section 11), in the same email.
        email = dataclasses.replace(
            email, cc=tuple(p["email"] for p in participants(conn, ticket["id"]))
        )
        return queue_email(
            conn,
            email,
            ticket_id=ticket["id"],
            ticket_message_id=message["id"],
            ticket_mailbox_id=ticket["mailbox_id"],
            now=now,
        )


def quoted_message(conn: psycopg.Connection, message: Row) -> Quote | None:
    """The latest public message before `message` (the customer's or staff's), as a reply
    to it quotes it; None when there is none."""
    previous = _previous_public_message(
        conn,
        ticket_id=message["ticket_id"],
        before_at=message["created_at"],
        before_id=message["id"],
    )
    if previous is None:
        return None
    return Quote(previous["author_name"] or "", previous["created_at"], previous["body"])


def status_after(new: NewMessage, ticket: Row) -> str | None:
    """The status a message sets: the one asked for, else IN_PROGRESS for a reply on an
    OPEN ticket (a note changes nothing by itself)."""
    if new.status is not None:
        return new.status
    if not new.is_note and ticket["status"] == "OPEN":
        return "IN_PROGRESS"
    return None
