"""What callers send, parsed once into frozen dataclasses.

JSON bodies, page forms and (next) inbound email all reach the services through these
functions, so a rule about a field is written once. A value that is not acceptable raises
one ValidationFailed naming every field at fault. The `*_from_form` helpers translate the
strings of an HTML form (checkboxes, empty selects) into the JSON shape first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supportdesk.core.errors import ValidationFailed
from supportdesk.core.paging import MAX_PER_PAGE, parse_page, query_reader
from supportdesk.core.text import (
    WHOLE_NUMBER,
    clean_choice,
    clean_email,
    clean_line,
    clean_text,
    invalid_characters,
)
from supportdesk.core.vocabulary import (
    MAX_BODY,
    MAX_NAME,
    MAX_SEARCH,
    MAX_SUBJECT,
    PRIORITIES,
    STATUSES,
    VISIBILITIES,
)
from supportdesk.tickets.search import fits_no_search


def _unknown(data: Mapping[str, Any], known: set[str], problems: dict[str, str]) -> None:
    for field in sorted(set(data) - known):
        problems[field] = "Unknown field."


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


def parse_new_ticket(data: Mapping[str, Any], *, strict: bool = True) -> NewTicket:
    """Validate a creation request; `strict` also refuses fields we do not know."""
    problems: dict[str, str] = {}
    if strict:
        _unknown(data, {"name", "email", "subject", "body", "priority"}, problems)
    name = clean_line(data.get("name"), "name", MAX_NAME, problems, "Enter your name.")
    email = clean_email(data.get("email"), problems, missing="Enter your email address.")
    subject = clean_line(
        data.get("subject"),
        "subject",
        MAX_SUBJECT,
        problems,
        "Enter a subject: a few words about your request.",
    )
    body = clean_text(data.get("body"), "body", MAX_BODY, problems, "Describe your request.")
    priority = clean_choice(data.get("priority") or "NORMAL", "priority", PRIORITIES, problems)
    if problems:
        raise ValidationFailed(problems)
    return NewTicket(name, email, subject, body, priority)


# --- status and priority -------------------------------------------------------------------


@dataclass(frozen=True)
class TicketChange:
    status: str | None = None
    priority: str | None = None


def parse_ticket_change(data: Mapping[str, Any]) -> TicketChange:
    problems: dict[str, str] = {}
    _unknown(data, {"status", "priority"}, problems)
    if not data:
        problems["status"] = "Give a status or a priority to change."
    status = priority = None
    if "status" in data:
        status = clean_choice(data["status"], "status", STATUSES, problems)
    if "priority" in data:
        priority = clean_choice(data["priority"], "priority", PRIORITIES, problems)
    if problems:
        raise ValidationFailed(problems)
    return TicketChange(status, priority)


def ticket_change_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    return {f: form[f] for f in ("status", "priority") if form.get(f)}


# --- assignment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    user_id: int | None  # None: unassign


def parse_assignment(data: Mapping[str, Any]) -> Assignment:
    problems: dict[str, str] = {}
    _unknown(data, {"user_id"}, problems)
    user_id = data.get("user_id")
    if "user_id" not in data or (
        user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int))
    ):
        problems["user_id"] = "Give the id of a staff member, or null to unassign."
    if problems:
        raise ValidationFailed(problems)
    return Assignment(user_id)


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

    @property
    def is_note(self) -> bool:
        return self.visibility == "INTERNAL"


def parse_new_message(data: Mapping[str, Any]) -> NewMessage:
    problems: dict[str, str] = {}
    _unknown(data, {"body", "visibility", "status", "last_seen_message_id"}, problems)
    body = clean_text(data.get("body"), "body", MAX_BODY, problems, "Write a message.")
    visibility = clean_choice(
        data.get("visibility") or "PUBLIC", "visibility", VISIBILITIES, problems
    )
    status = None
    if data.get("status") is not None:
        status = clean_choice(data["status"], "status", STATUSES, problems) or None
    last_seen = data.get("last_seen_message_id")
    if last_seen is not None and (
        isinstance(last_seen, bool) or not isinstance(last_seen, int) or last_seen < 0
    ):
        problems["last_seen_message_id"] = "Give the id of the newest message you have seen."
        last_seen = None
    if problems:
        raise ValidationFailed(problems)
    return NewMessage(body, visibility, status, last_seen)


def parse_customer_reply(data: Mapping[str, Any]) -> str:
    """The customer's reply box on their view of the ticket: its text."""
    problems: dict[str, str] = {}
    body = clean_text(data.get("body"), "body", MAX_BODY, problems, "Write a message.")
    if problems:
        raise ValidationFailed(problems)
    return body


def message_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The reply box: a textarea, the note checkbox, an optional status, the last seen id."""
    return {
        "body": form.get("body"),
        "visibility": "INTERNAL" if form.get("internal") else "PUBLIC",
        "status": form.get("status") or None,
        "last_seen_message_id": form_number(form.get("last_seen_message_id")),
    }


# --- the list's filters --------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFilters:
    status: str | None = None
    priority: str | None = None
    assigned_to: str | int | None = None  # a user id, "me" or "none"
    q: str | None = None
    page: int = 1
    per_page: int = 25

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (page links keep them)."""
        values = {
            "status": self.status,
            "priority": self.priority,
            "assigned_to": self.assigned_to,
            "q": self.q,
        }
        return {k: str(v) for k, v in values.items() if v is not None}


def parse_filters(params: Mapping[str, Any]) -> TicketFilters:
    """The list's query parameters; a bad value is a 422 naming the parameter."""
    problems: dict[str, str] = {}

    one = query_reader(params, problems)
    status, priority = one("status"), one("priority")
    if status is not None:
        status = clean_choice(status, "status", STATUSES, problems) or None
    if priority is not None:
        priority = clean_choice(priority, "priority", PRIORITIES, problems) or None
    assigned: str | int | None = one("assigned_to")
    if isinstance(assigned, str):
        if assigned.lower() in ("me", "none"):
            assigned = assigned.lower()
        elif WHOLE_NUMBER.match(assigned):
            assigned = int(assigned)
        else:
            problems["assigned_to"] = "Use a staff member's id, me or none."
            assigned = None
    q = one("q")
    if q is not None and (bad := invalid_characters(q, multiline=False)):
        problems["q"] = bad
    elif q is not None and fits_no_search(q.strip()):
        problems["q"] = (
            "Search for a ticket number, an email address or at least 2 characters "
            "with a letter or digit."
        )
    elif q is not None and len(q) > MAX_SEARCH:
        problems["q"] = f"Search for at most {MAX_SEARCH} characters."
    page, per_page = parse_page(one, problems, MAX_PER_PAGE)
    if problems:
        raise ValidationFailed(problems, "Some filters are not valid.")
    return TicketFilters(status, priority, assigned, q, page, per_page)
