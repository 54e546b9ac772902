"""What callers send, parsed once into frozen dataclasses.

JSON bodies, page forms and (next) inbound email all reach the services through these
functions, so a rule about a field is written once. Each body's fields are declared once
(`core.fields`): the check that runs here and the schema the OpenAPI document publishes are
both read from that declaration. A value that is not acceptable raises one
ValidationFailed naming every field at fault. The `*_from_form` helpers translate the
strings of an HTML form (checkboxes, empty selects) into the JSON shape first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from supportdesk.core.fields import (
    CHOICE,
    EMAIL,
    EMAILS,
    INTEGER,
    LINE,
    TEXT,
    Body,
    Field,
    Kind,
    Query,
)
from supportdesk.core.paging import PAGE, PER_PAGE, not_too_deep
from supportdesk.core.text import EMAIL_SHAPE, WHOLE_NUMBER, Problems, invalid_characters
from supportdesk.core.vocabulary import (
    MAX_BODY,
    MAX_EMAIL,
    MAX_NAME,
    MAX_SEARCH,
    MAX_SUBJECT,
    PRIORITIES,
    STATUSES,
    VISIBILITIES,
)
from supportdesk.tickets.search import fits_no_search


def form_number(value: object) -> object:
    """A form's digits as a number, an empty field as None, anything else as it is (and
    then refused by the parser with the JSON rule's message)."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return int(value) if WHOLE_NUMBER.match(value) else value


# --- a new ticket --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTicket:
    name: str
    email: str
    subject: str
    body: str
    priority: str
    # Opened by email: the message's Message-ID (the same email twice is stored once) and
    # its whole text when `body` is its trimmed version.
    email_message_id: str | None = None
    full_body: str | None = None
    # By email: its HTML, sanitized (mail/inbound/original_html.py), shown in a sandboxed frame.
    html_body: str | None = None
    # By email: whether DMARC authenticated the sender's domain (pass, fail, none).
    sender_auth: str = "none"
    # Opened from a company mailbox (section 10): its emails go out From that address.
    mailbox_id: int | None = None


NEW_TICKET = Body(
    "NewTicket",
    (
        Field("name", LINE, "Enter your name.", max_length=MAX_NAME, required=True),
        Field("email", EMAIL, "Enter your email address.", required=True),
        Field(
            "subject",
            LINE,
            "Enter a subject: a few words about your request.",
            max_length=MAX_SUBJECT,
            required=True,
        ),
        Field("body", TEXT, "Describe your request.", max_length=MAX_BODY, required=True),
        Field("priority", CHOICE, choices=PRIORITIES, default="NORMAL"),
    ),
)


def parse_new_ticket(data: Mapping[str, Any], *, strict: bool = True) -> NewTicket:
    """Validate a creation request; `strict` also refuses fields we do not know."""
    return NewTicket(**NEW_TICKET.parse(data, strict=strict))


# --- status and priority -------------------------------------------------------------------


def _moment(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """An ISO 8601 date and time with its offset (`2026-12-08T09:00:00+01:00`, `...Z`)."""
    moment = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None or moment.utcoffset() is None:
        problems[field.name] = field.message
        return None
    return moment


# A moment: ISO 8601 with an offset (DESIGN.md section 5).
MOMENT = Kind({"type": "string", "format": "date-time"}, _moment)


@dataclass(frozen=True)
class TicketChange:
    status: str | None = None
    priority: str | None = None
    waiting_until: datetime | None = None
    # Whether `waiting_until` was given at all: null (or an emptied form field) clears it.
    sets_waiting_until: bool = False


TICKET_CHANGE = Body(
    "TicketChange",
    (
        Field("status", CHOICE, choices=STATUSES),
        Field("priority", CHOICE, choices=PRIORITIES),
        Field(
            "waiting_until",
            MOMENT,
            "Give a date and time with its offset, like 2026-12-08T09:00:00+00:00.",
            nullable=True,
            description="a WAITING ticket returns to OPEN at this moment (ISO 8601 with "
            "offset, in the future; only with status WAITING); null: it waits with no end",
        ),
    ),
    at_least_one="Give a status, a priority or waiting_until to change.",
)


def parse_ticket_change(data: Mapping[str, Any]) -> TicketChange:
    values = TICKET_CHANGE.parse(data)
    return TicketChange(**values, sets_waiting_until="waiting_until" in data)


def ticket_change_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The status form's fields; its `waiting_until` is a datetime-local field (no offset),
    read as UTC, as the page says; emptied, it clears the moment."""
    change: dict[str, Any] = {f: form[f] for f in ("status", "priority") if form.get(f)}
    if "waiting_until" in form:
        local = str(form["waiting_until"] or "").strip()
        change["waiting_until"] = _utc_from_form(local) if local else None
    return change


def _utc_from_form(local: str) -> str:
    """`2026-12-08T09:00` (a datetime-local value) as `2026-12-08T09:00:00+00:00`; anything
    else as it is, for the parser to refuse."""
    try:
        moment = datetime.fromisoformat(local)
    except ValueError:
        return local
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


# --- assignment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    user_id: int | None  # None: unassign


ASSIGNMENT = Body(
    "Assignment",
    (
        Field(
            "user_id",
            INTEGER,
            "Give the id of a staff member, or null to unassign.",
            required=True,
            nullable=True,
            description="an active staff user, or null to unassign",
        ),
    ),
)


def parse_assignment(data: Mapping[str, Any]) -> Assignment:
    return Assignment(**ASSIGNMENT.parse(data))


def assignment_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    raw = form.get("user_id")
    return {"user_id": None if raw == "none" else form_number(raw)}


# --- a message of the conversation ---------------------------------------------------------


@dataclass(frozen=True)
class NewMessage:
    body: str
    visibility: str = "PUBLIC"
    # "Reply and mark waiting/resolved": a status set by the same request, or None.
    status: str | None = None
    # The newest message the author had seen: the collision guard counts what came since.
    last_seen_message_id: int | None = None
    # Written by email (a staff member answering from their inbox): as for NewTicket.
    email_message_id: str | None = None
    full_body: str | None = None
    # By email: its HTML, sanitized (mail/inbound/original_html.py), shown in a sandboxed frame.
    html_body: str | None = None
    # By email: whether DMARC authenticated the sender's domain (pass, fail, none).
    sender_auth: str = "none"
    # A reply's Cc: the ticket's participants from now on (section 11); None: unchanged.
    cc: tuple[str, ...] | None = None
    # Files of saved replies (section 12) attached as if uploaded: their ids, once each.
    saved_reply_files: tuple[int, ...] = ()

    @property
    def is_note(self) -> bool:
        return self.visibility == "INTERNAL"


MESSAGE_BODY = Field("body", TEXT, "Write a message.", max_length=MAX_BODY, required=True)


def _reply_cc(field: Field, value: Any, problems: Problems, values: Mapping[str, Any]) -> Any:
    emails = EMAILS.check(field, value, problems, values)
    if emails is not None and values.get("visibility") == "INTERNAL":
        problems[field.name] = (
            "Only a reply is copied to people: an internal note is never emailed."
        )
    return emails


def _file_ids(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A JSON list of ids (whole numbers from 1), each once, in the order given."""
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_ID for v in value
    ):
        problems[field.name] = field.message
        return None
    return tuple(dict.fromkeys(value))


MAX_ID = 2**63 - 1  # a bigint
FILE_IDS = Kind(
    {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}, _file_ids
)

NEW_MESSAGE = Body(
    "NewMessage",
    (
        MESSAGE_BODY,
        Field(
            "visibility",
            CHOICE,
            choices=VISIBILITIES,
            default="PUBLIC",
            description="PUBLIC: emailed to the requester; INTERNAL: a note",
        ),
        Field(
            "status",
            CHOICE,
            choices=STATUSES,
            nullable=True,
            description="set in the same request (a reply on an OPEN ticket otherwise moves "
            "it to IN_PROGRESS)",
        ),
        Field(
            "last_seen_message_id",
            INTEGER,
            "Give the id of the newest message you have seen.",
            nullable=True,
            minimum=0,
            description="the newest message the author had seen; the answer counts the "
            "messages that arrived after it",
        ),
        Field(
            "cc",
            Kind(EMAILS.schema, _reply_cc),
            "Give a list of email addresses.",
            nullable=True,
            description="a PUBLIC reply only (422 on an INTERNAL note): the people copied on "
            "it and on the ticket's replies from now on (its participants): those left out "
            "stop being copied, `[]` copies nobody; absent or null leaves them as they are. "
            "Never the requester nor one of our own addresses (422), at most "
            "MAX_PARTICIPANTS (422)",
        ),
        Field(
            "saved_reply_files",
            FILE_IDS,
            "Give a list of the ids of saved replies' files.",
            default=(),
            description="files of saved replies the caller may use (their `files[].id`), "
            "attached to the message as uploaded ones are (stored again under the ticket), "
            "counted with them against MAX_UPLOAD_FILES (413); one the caller may not use, "
            "or that is gone, is a 422",
        ),
    ),
)
# The customer's reply box: its text, beside the form's other fields (not in the API).
CUSTOMER_REPLY = Body("CustomerReply", (MESSAGE_BODY,), closed=False)


def parse_new_message(data: Mapping[str, Any]) -> NewMessage:
    return NewMessage(**NEW_MESSAGE.parse(data))


# --- the people copied on a ticket ----------------------------------------------------------


NEW_PARTICIPANT = Body(
    "NewParticipant",
    (
        Field("email", EMAIL, "Enter the email address to copy.", required=True),
        Field("name", LINE, "Enter a name, or leave it out.", max_length=MAX_NAME),
    ),
)


def parse_new_participant(data: Mapping[str, Any]) -> tuple[str, str]:
    """(email, name or "") of a person staff copy on a ticket."""
    values = NEW_PARTICIPANT.parse(data)
    return values["email"], values["name"] or ""


def participant_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The page's form: an empty name is no name."""
    fields = {"email": form.get("email")}
    return fields | ({"name": form["name"]} if (form.get("name") or "").strip() else {})


def parse_customer_reply(data: Mapping[str, Any]) -> str:
    """The customer's reply box on their view of the ticket: its text."""
    return CUSTOMER_REPLY.parse(data)["body"]


def message_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The reply box: a textarea, the note checkbox, an optional status, the last seen id,
    and the Cc field, prefilled with the participants the page showed (`cc_shown`): a Cc
    left as it was changes nothing (so one copied by email meanwhile stays), and a note,
    never emailed, leaves the Cc alone."""
    internal = bool(form.get("internal"))
    values = {
        "body": form.get("body"),
        "visibility": "INTERNAL" if internal else "PUBLIC",
        "status": form.get("status") or None,
        "last_seen_message_id": form_number(form.get("last_seen_message_id")),
    }
    cc = form_list(form.get("cc"))
    if cc is not None and not internal:
        shown = form_list(form.get("cc_shown")) or []
        if {c.lower() for c in cc} != {s.lower() for s in shown}:
            values["cc"] = cc
    return values


_LIST_SEPARATORS = re.compile(r"[\s,;]+")


def form_list(value: object) -> list[str] | None:
    """A form's list of addresses (a repeated field, or one with the addresses separated
    by commas, semicolons or spaces) as a JSON list; None when the form has no such field."""
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    return [
        item for v in values if isinstance(v, str) for item in _LIST_SEPARATORS.split(v) if item
    ]


# --- the list's filters --------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFilters:
    status: str | None = None
    priority: str | None = None
    assigned_to: str | int | None = None  # a user id, "me" or "none"
    q: str | None = None
    requester: str | None = None  # an address, lower-case: that requester's tickets
    page: int = 1
    per_page: int = 25

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (page links keep them)."""
        values = {
            "status": self.status,
            "priority": self.priority,
            "assigned_to": self.assigned_to,
            "q": self.q,
            "requester": self.requester,
        }
        return {k: str(v) for k, v in values.items() if v is not None}


def _assignee(field: Field, value: str, problems: Problems, _: Mapping[str, Any]) -> Any:
    if value.lower() in ("me", "none"):
        return value.lower()
    if WHOLE_NUMBER.match(value):
        return int(value)
    problems[field.name] = field.message
    return None


def _search(field: Field, q: str, problems: Problems, _: Mapping[str, Any]) -> str | None:
    if bad := invalid_characters(q, multiline=False):
        problems[field.name] = bad
    elif fits_no_search(q):
        problems[field.name] = (
            "Search for a ticket number, an email address or at least 2 characters "
            "with a letter or digit."
        )
    elif field.max_length is not None and len(q) > field.max_length:
        problems[field.name] = f"Search for at most {field.max_length} characters."
    return q


def _requester(field: Field, value: str, problems: Problems, _: Mapping[str, Any]) -> Any:
    """An address as the tickets hold it (EMAIL_SHAPE: the lenient ones of inbound mail too),
    compared lower-case, as the requester index is."""
    value = value.strip()
    if bad := invalid_characters(value, multiline=False):
        problems[field.name] = bad
        return None
    if len(value) > MAX_EMAIL or not EMAIL_SHAPE.match(value):
        problems[field.name] = field.message
        return None
    return value.lower()


TICKET_FILTERS = Query(
    (
        Field("status", CHOICE, choices=STATUSES, description="one status"),
        Field("priority", CHOICE, choices=PRIORITIES, description="one priority"),
        Field(
            "assigned_to",
            Kind({"type": "string"}, _assignee),
            "Use a staff member's id, me or none.",
            description="a staff user id, `me` or `none`",
        ),
        Field(
            "q",
            Kind({"type": "string"}, _search),  # blank: no search, as for every parameter
            max_length=MAX_SEARCH,
            description=f"a search (up to {MAX_SEARCH} characters): a ticket number "
            "(`202611-00042`, or `42` for this month's), an exact email address (that "
            "requester's tickets), two characters (a word starting with them), or three or "
            "more (a case-insensitive substring of subject, requester name or email). Text "
            "(and a number of three digits or more) also finds the tickets with a message, "
            "INTERNAL notes included, holding all its words (full-text search, whole words); "
            "a text search's `total` counts to 100. One character other than a digit is a 422",
        ),
        Field(
            "requester",
            Kind({"type": "string", "format": "email", "maxLength": MAX_EMAIL}, _requester),
            "Use an email address.",
            description="an email address: that requester's tickets only (exactly, "
            "case-insensitively); combines with the other filters",
        ),
        PAGE,
        PER_PAGE,
    ),
    across=not_too_deep,
)


def parse_filters(params: Mapping[str, Any]) -> TicketFilters:
    """The list's query parameters; a bad value is a 422 naming the parameter."""
    return TicketFilters(**TICKET_FILTERS.parse(params))
