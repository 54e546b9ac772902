"""Staff write first: a ticket opened by a staff member's email to a customer (DESIGN.md
section 11).

`POST /api/tickets` as staff with `{to, cc?, subject, body, mailbox_id?}`, and the New email
page. The ticket's requester is `to`; `cc` become its participants; the first message is a
PUBLIC STAFF message by the author, emailed at once To the requester and Cc the
participants, From the chosen mailbox (else MAIL_FROM), with Reply-To and a Message-ID that
carry the ticket's token, so that the customer's answer threads back. No acknowledgement.
The ticket waits for the customer (WAITING) and belongs to its author, who started the
conversation and gets told when the customer answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import formataddr, getaddresses
from typing import Any

import redis

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Unauthenticated, ValidationFailed
from supportdesk.core.fields import INTEGER, LINE, TEXT, Body, Field, Kind
from supportdesk.core.text import EMAIL_ADDRESS, Problems, invalid_characters
from supportdesk.core.vocabulary import MAX_BODY, MAX_EMAIL, MAX_NAME, MAX_SUBJECT
from supportdesk.files.uploads import Upload
from supportdesk.mail.outbound.compose import EmailComposer, UnnumberedEmail
from supportdesk.mail.outbound.outbox import push_after_commit, queue_email
from supportdesk.tickets.access import visible_ticket
from supportdesk.tickets.attachments import AttachmentService
from supportdesk.tickets.inputs import form_number
from supportdesk.tickets.participants import Person, add_participants, is_our_address
from supportdesk.tickets.pids import take_next_pid
from supportdesk.tickets.timeline import record_event

_reserve_ticket_id = queries.reserve_ticket_id
_insert_ticket = queries.insert_ticket
_insert_message = queries.insert_message
_mailbox_by_id = queries.mailbox_by_id
_list_mailboxes = queries.list_mailboxes

Row = Mapping[str, Any]

# A written address list: commas, semicolons or line breaks between the addresses.
_LIST_SEPARATORS = re.compile(r"[;\r\n]+")
# A `Name <address>` as typed may be longer than an address; no more than this is read.
MAX_RECIPIENT = MAX_NAME + MAX_EMAIL + 4


# --- what the caller sends ---------------------------------------------------------------------


@dataclass(frozen=True)
class StaffEmail:
    to: Person  # the requester: `Name <address>` or a bare address (then named by its local part)
    subject: str
    body: str
    cc: tuple[Person, ...] = ()
    mailbox_id: int | None = None  # None: From MAIL_FROM


def read_person(text: str) -> Person | None:
    """`Name <address>` or `address` as one person (the address lower-cased, the name tidied
    or empty); None for anything else (two addresses, a group)."""
    if len(text) > MAX_RECIPIENT or invalid_characters(text, multiline=False):
        return None
    pairs = getaddresses([text])
    if len(pairs) != 1:
        return None
    name, address = pairs[0]
    address = address.strip().lower()
    if not address or len(address) > MAX_EMAIL or not EMAIL_ADDRESS.match(address):
        return None
    return Person(address, " ".join(name.split())[:MAX_NAME])


def _recipient(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """The requester: named by the address's local part when no name is written."""
    person = read_person(value.strip()) if isinstance(value, str) and value.strip() else None
    if person is None:
        problems[field.name] = field.message
        return None
    return person if person.name else Person(person.email, person.email.split("@")[0][:MAX_NAME])


def _recipients(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A list of addresses, or one text of them separated by commas (a page form, a
    multipart field); the same address twice counts once."""
    if value is None:
        return ()
    if isinstance(value, str) and len(value) <= MAX_RECIPIENT * 50:
        # A comma inside a quoted name (`"Doe, Jane" <jane@example.org>`) does not split.
        pairs = getaddresses([_LIST_SEPARATORS.sub(",", value)])
        if any(not address.isascii() for _, address in pairs):
            # formataddr refuses (UnicodeEncodeError) an address it cannot write in ASCII,
            # and read_person would refuse it too: the sender's mistake, not ours.
            bad = next(address for _, address in pairs if not address.isascii())
            problems[field.name] = f"{bad[:80]} is not an email address. {field.message}"
            return ()
        value = [formataddr(pair) for pair in pairs]
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        problems[field.name] = field.message
        return ()
    people: dict[str, Person] = {}
    for item in filter(None, (i.strip() for i in value)):
        person = read_person(item)
        if person is None:
            problems[field.name] = f"{item[:80]} is not an email address. {field.message}"
            return ()
        people.setdefault(person.email, person)
    return tuple(people.values())


# An address, with or without a name (`Cleo Customer <cleo@example.org>`).
RECIPIENT = Kind({"type": "string"}, _recipient)
# Addresses, as a list or as one text with commas.
RECIPIENTS = Kind(
    {"type": ["array", "string"], "items": {"type": "string"}},
    _recipients,
)

STAFF_EMAIL = Body(
    "StaffEmail",
    (
        Field(
            "to",
            RECIPIENT,
            "Enter the customer's email address, like name@example.com or "
            "Cleo Customer <cleo@example.com>.",
            required=True,
            description="the customer (the ticket's requester): `name@example.com` or "
            "`Name <name@example.com>`; without a name, the address's local part is shown",
        ),
        Field(
            "cc",
            RECIPIENTS,
            "Separate addresses with commas.",
            description="copied people (the ticket's participants, at most MAX_PARTICIPANTS): "
            "a list of addresses, or one text with commas between them",
        ),
        Field(
            "subject",
            LINE,
            "Enter a subject.",
            max_length=MAX_SUBJECT,
            required=True,
            description="the email's subject (the ticket's); `[#PID]` is put before it",
        ),
        Field("body", TEXT, "Write a message.", max_length=MAX_BODY, required=True),
        Field(
            "mailbox_id",
            INTEGER,
            "Choose an active mailbox.",
            nullable=True,
            description="an active company mailbox to send From (and be answered at); "
            "absent or null: MAIL_FROM",
        ),
    ),
)


def parse_staff_email(data: Mapping[str, Any], *, strict: bool = True) -> StaffEmail:
    values = STAFF_EMAIL.parse(data, strict=strict)
    return StaffEmail(**{k: v for k, v in values.items() if v is not None})


def staff_email_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The New email page's fields in the API's shape (an empty select: MAIL_FROM)."""
    fields = {name: form.get(name) for name in ("to", "cc", "subject", "body")}
    return fields | {"mailbox_id": form_number(form.get("mailbox_id"))}


def writes_first(data: Mapping[str, Any], user: Row | None) -> bool:
    """Whether a `POST /api/tickets` body is a staff member's email to a customer rather
    than the public form's request. `to` makes it one, and only staff may send it: without
    a staff session (none, an expired one, a cookie without its CSRF token) it is refused
    with a 401, and nothing is stored or sent. From staff, a body without the form's
    `email` or `name` is one too (so that its errors name `to`, not `email`)."""
    if "to" in data:
        if user is None:
            raise Unauthenticated("Log in as staff to write to a customer.")
        return True
    return user is not None and "email" not in data and "name" not in data


# --- the service -------------------------------------------------------------------------------


class OutgoingService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        composer: EmailComposer,
        attachments: AttachmentService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        max_participants: int,
        support_address: str,
    ):
        self.db = db
        self.redis = redis_client
        self.composer = composer
        self.attachments = attachments
        self.clock = clock
        self.max_participants = max_participants
        self.support_address = support_address

    def start(
        self, author: Row, new: StaffEmail, *, channel: str, uploads: Sequence[Upload] = ()
    ) -> Row:
        """Open the ticket with its first message, files, participants, events and email,
        in one transaction; the email is queued after commit. Returns the ticket as its
        author sees it. ValidationFailed for our own address as `to` or in `cc`, more
        copied people than MAX_PARTICIPANTS, or a mailbox that is not an active one."""
        cc = tuple(p for p in new.cc if p.email != new.to.email)
        if len(cc) > self.max_participants:
            raise ValidationFailed({"cc": f"Copy at most {self.max_participants} people."})
        reserved = self._reserve_id() if uploads else None
        with (
            self.attachments.stashed(reserved or 0, uploads) as stored,
            self.db.transaction() as conn,
        ):
            self._check(conn, new, cc)
            now = self.clock()
            ticket_id = reserved or int(_reserve_ticket_id(conn))
            message = self._first_message(conn, ticket_id, author, new, channel, now)
            files = self.attachments.record(
                conn, ticket_id, message["id"], stored, actor=author, now=now
            )
            # Rendered before the PID is taken: the counter's lock, held from there to commit,
            # waits for the database alone (but for the few rows of the participants, whose
            # foreign key, unlike the others, is checked at once).
            email = self._first_email(new, author, files)
            ticket = self._insert_ticket(conn, ticket_id, author, new, channel, now)
            copied = add_participants(
                conn,
                ticket,
                cc,
                actor=author,
                now=now,
                cap=self.max_participants,
                support_address=self.support_address,
            )
            outbox_id = queue_email(
                conn,
                replace(email.numbered(ticket["pid"]), cc=tuple(p["email"] for p in copied)),
                ticket_id=ticket_id,
                ticket_message_id=message["id"],
                ticket_mailbox_id=ticket["mailbox_id"],
                now=now,
            )
            result = visible_ticket(conn, author, ticket["pid"])
        self.db.after_commit(push_after_commit, self.redis, [outbox_id])
        return result

    def _first_email(self, new: StaffEmail, author: Row, files: Sequence[Row]) -> UnnumberedEmail:
        """The email, its files attached or linked as a reply's are."""
        links = [
            {
                "id": f["id"],
                "filename": f["filename"],
                "size": f["size_bytes"],
                "url": self.attachments.signed_link(f["id"]),
            }
            for f in files
        ]
        return self.composer.unnumbered_first_message(
            to=new.to.email,
            name=new.to.name,
            subject=new.subject,
            body=new.body,
            author=author,
            files=links,
        )

    @staticmethod
    def _insert_ticket(
        conn: Any, ticket_id: int, author: Row, new: StaffEmail, channel: str, now: datetime
    ) -> Row:
        """The ticket row, numbered now: WAITING on the customer, assigned to its author."""
        return _insert_ticket(
            conn,
            id=ticket_id,
            pid=take_next_pid(conn, now),
            subject=new.subject,
            status="WAITING",
            priority="NORMAL",
            requester_email=new.to.email,
            requester_name=new.to.name,
            channel=channel,
            assigned_to=author["id"],
            follows_up_id=None,
            mailbox_id=new.mailbox_id,
            created_at=now,
        )

    def sending_mailboxes(self) -> list[Row]:
        """The active company mailboxes, which a staff member may send From."""
        with self.db.transaction() as conn:
            return [m for m in _list_mailboxes(conn) if m["is_active"]]

    def _check(self, conn: Any, new: StaffEmail, cc: Sequence[Person]) -> None:
        """What the fields alone cannot tell: addresses that are the desk's own (mail to
        them would come straight back as a new ticket), and the mailbox."""
        problems: Problems = {}
        if is_our_address(conn, new.to.email, self.support_address):
            problems["to"] = "That is the desk's own address: write to a customer."
        ours = [p.email for p in cc if is_our_address(conn, p.email, self.support_address)]
        if ours:
            problems["cc"] = f"{ours[0]} is the desk's own address: leave it out."
        if new.mailbox_id is not None:
            mailbox = _mailbox_by_id(conn, id=new.mailbox_id)
            if mailbox is None or not mailbox["is_active"]:
                problems["mailbox_id"] = "Choose an active mailbox."
        if problems:
            raise ValidationFailed(problems)

    @staticmethod
    def _first_message(
        conn: Any, ticket_id: int, author: Row, new: StaffEmail, channel: str, now: datetime
    ) -> Row:
        """The CREATED and ASSIGNED events, the author's PUBLIC message and its event (the
        ticket row follows in the same transaction: these foreign keys wait for commit)."""
        requester = {"email": new.to.email, "name": new.to.name}
        created = {"channel": channel, "requester": requester, "priority": "NORMAL"}
        record_event(
            conn, ticket_id, "CREATED", actor=author, now=now, data=created | {"outgoing": True}
        )
        person = {"id": author["id"], "name": author["name"]}
        record_event(
            conn, ticket_id, "ASSIGNED", actor=author, now=now, data={"from": None, "to": person}
        )
        message = _insert_message(
            conn,
            ticket_id=ticket_id,
            author="STAFF",
            author_user_id=author["id"],
            author_email=author["email"],
            visibility="PUBLIC",
            channel=channel,
            body=new.body,
            full_body=None,
            html_body=None,
            email_message_id=None,
            created_at=now,
            matched_by_subject_only=False,
            sender_auth="none",
        )
        record_event(
            conn,
            ticket_id,
            "MESSAGE_ADDED",
            actor=author,
            now=now,
            data={"message_id": message["id"], "visibility": "PUBLIC"},
        )
        return message

    def _reserve_id(self) -> int:
        with self.db.transaction() as conn:
            return int(_reserve_ticket_id(conn))
