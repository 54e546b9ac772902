"""The timeline: writing ticket events, and reading each as data and as a sentence."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from supportdesk.core.db import queries
from supportdesk.core.vocabulary import (
    CHANNEL_LABELS,
    EMAIL_KIND_LABELS,
    EVENT_TYPES,
    PRIORITY_LABELS,
    STATUS_LABELS,
)
from supportdesk.webhooks.events import queue_for_event

_insert_event = queries.insert_event
_ticket_timeline = queries.ticket_timeline

Row = Mapping[str, Any]


def record_event(
    conn: psycopg.Connection,
    ticket_id: int,
    kind: str,
    *,
    actor: Row | None,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> Row:
    """Append one event to a ticket's timeline, in the caller's transaction: the only writer
    of `ticket_events` but one, the `open_thread` query that writes a new ticket's CREATED
    event with its first message (the table itself refuses updates and deletes). The
    outgoing webhooks that want this change get their deliveries in the same transaction
    (webhooks/events.py)."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    actor_id = None if actor is None else actor["id"]
    event = _insert_event(
        conn,
        ticket_id=ticket_id,
        type=kind,
        actor_id=actor_id,
        data=Jsonb(dict(data or {})),
        created_at=now,
    )
    queue_for_event(conn, ticket_id, kind, actor_id=actor_id, now=now, data=data)
    return event


def ticket_events(conn: psycopg.Connection, ticket_id: int) -> list[Row]:
    """Every event of a ticket, oldest first, with the actor's name."""
    return _ticket_timeline(conn, ticket_id=ticket_id)


Describe = Callable[[Mapping[str, Any], Mapping[str, Any], str], str]


def _name(person: Mapping[str, Any] | None) -> str:
    return person["name"] if person else "nobody"


def _created(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    requester = data.get("requester", {}).get("name", "The customer")
    via = CHANNEL_LABELS.get(data.get("channel", ""), "the web form")
    if data.get("outgoing"):  # staff wrote first (tickets.outgoing)
        return f"{actor} emailed {requester}, opening this ticket"
    if event.get("actor_id"):
        return f"{actor} opened this ticket for {requester} via {via}"
    return f"{requester} opened this ticket via {via}"


def _assigned(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    to = data.get("to") or {}
    if to.get("id") is not None and to.get("id") == event.get("actor_id"):  # taken
        if data.get("from"):
            return f"{actor} took this from {_name(data['from'])}"
        return f"{actor} took this"
    if data.get("from"):
        return f"{actor} reassigned this from {_name(data['from'])} to {_name(data.get('to'))}"
    return f"{actor} assigned this to {_name(data.get('to'))}"


def _email_received(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    sender = data.get("from") or "the customer"
    if data.get("automatic"):
        return f"An automatic email from {sender} was received"
    if data.get("matched_by_subject_only"):
        return (
            f"An email from {sender} was received, matched by the ticket number in its "
            "subject only (it may not be from the customer; it changed nothing)"
        )
    if data.get("participant"):
        return f"{sender}, copied on this ticket, wrote by email"
    return f"The customer wrote by email ({sender})"


def _email_outcome(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    what = EMAIL_KIND_LABELS.get(data.get("kind", ""), "email").capitalize()
    if event["type"] == "EMAIL_SENT":
        return f"{what} emailed to {data.get('to', 'the recipient')}"
    return f"{what} to {data.get('to', 'the recipient')} could not be delivered: " + str(
        data.get("error", "unknown error")
    )


def _change(labels: Mapping[str, str], title: str) -> Describe:
    def describe(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
        before, after = data.get("from"), data.get("to")
        return f"{title}: {labels.get(before, before)} → {labels.get(after, after)}"

    return describe


def _by_staff_or_customer(staff: str, customer: str) -> Describe:
    def describe(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
        return staff.format(actor=actor) if event.get("actor_id") else customer

    return describe


def _by_staff_or_customer_fmt(staff: str, customer: str) -> Describe:
    def describe(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
        email = data.get("email", "someone")
        if event.get("actor_id"):
            return staff.format(actor=actor, email=email)
        return customer.format(email=email)

    return describe


def _attachment(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    who = actor if event.get("actor_id") else "The customer"
    return f"{who} attached {data.get('filename', 'a file')}"


def _ticket_ref(data: Mapping[str, Any], key: str) -> str:
    other = data.get(key) or {}
    return f"#{other.get('pid', '?')}"


def _moved(data: Mapping[str, Any]) -> str:
    count = int(data.get("messages") or 0)
    return f" ({count} message{'' if count == 1 else 's'})" if "messages" in data else ""


def _spam(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    blocked = data.get("blocked") or data.get("blocked_by")
    return f"{actor} marked this as spam" + (f" (blocked: {blocked})" if blocked else "")


def _status_changed(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    said = _change(STATUS_LABELS, "Status")(event, data, actor)
    if data.get("reason") == "waiting_until":  # the scheduler (section 12)
        return f"{said}: the wait set until {_day(data.get('waiting_until'))} ended"
    return said


def _waiting_until_set(event: Mapping[str, Any], data: Mapping[str, Any], actor: str) -> str:
    if data.get("to") is None:
        return f"{actor} stopped the wait (it was set until {_day(data.get('from'))})"
    return f"{actor} set the wait until {_day(data.get('to'))}, then Open again"


def _day(moment: Any) -> str:
    """An ISO 8601 moment of an event's data, as `7 Dec 2026 09:14 UTC`."""
    try:
        when = datetime.fromisoformat(str(moment)).astimezone(UTC)
    except ValueError:
        return str(moment)
    return f"{when.day} {when:%b %Y %H:%M} UTC"


_DESCRIBE: dict[str, Describe] = {
    "CREATED": _created,
    "ASSIGNED": _assigned,
    "UNASSIGNED": lambda event, data, actor: f"{actor} unassigned {_name(data.get('from'))}",
    "STATUS_CHANGED": _status_changed,
    "WAITING_UNTIL_SET": _waiting_until_set,
    "AUTO_CLOSED": lambda event, data, actor: (
        "Closed automatically: resolved with no activity since "
        + _day(data.get("resolved_since"))
        + "; the customer was told"
    ),
    "PRIORITY_CHANGED": _change(PRIORITY_LABELS, "Priority"),
    "MESSAGE_ADDED": _by_staff_or_customer("{actor} replied to the customer", "The customer wrote"),
    "NOTE_ADDED": lambda event, data, actor: f"{actor} added an internal note",
    "ATTACHMENT_ADDED": _attachment,
    "EMAIL_RECEIVED": _email_received,
    "EMAIL_SENT": _email_outcome,
    "EMAIL_FAILED": _email_outcome,
    "PARTICIPANT_ADDED": _by_staff_or_customer_fmt(
        "{actor} copied {email}", "{email} was copied on an email"
    ),
    "PARTICIPANT_REMOVED": _by_staff_or_customer_fmt(
        "{actor} stopped copying {email}", "{email} is no longer copied"
    ),
    # Merge and split (tickets/merging.py).
    "MERGED_INTO": lambda event, data, actor: (
        f"{actor} merged this ticket into {_ticket_ref(data, 'into')}{_moved(data)}"
    ),
    "MERGED_FROM": lambda event, data, actor: (
        f"{actor} merged {_ticket_ref(data, 'from')} into this ticket{_moved(data)}"
    ),
    "SPLIT_TO": lambda event, data, actor: (
        f"{actor} split a message off into the new ticket {_ticket_ref(data, 'to')}"
    ),
    "SPLIT_FROM": lambda event, data, actor: (
        f"{actor} opened this ticket from a message of {_ticket_ref(data, 'from')}"
    ),
    "SPAM": _spam,
    # A customer's data erased (DESIGN.md section 13): counts only, never whose.
    "ERASED": lambda event, data, actor: (
        f"{actor if event.get('actor_id') else 'The desk'} erased "
        + ("the customer's data" if data.get("requester") else "a participant's data")
        + f" ({data.get('messages', 0)} messages, {data.get('files', 0)} files)"
    ),
}


def describe_event(event: Mapping[str, Any]) -> str:
    """One human sentence: "Ana assigned this to Bo", "Status: Open → Resolved"."""
    describe = _DESCRIBE.get(event["type"])
    if describe is None:
        return event["type"].replace("_", " ").capitalize()
    return describe(event, event["data"] or {}, event.get("actor_name") or "Someone")


def public_event(event: Mapping[str, Any]) -> dict[str, Any]:
    actor = None
    if event["actor_id"] is not None:
        actor = {"id": event["actor_id"], "name": event.get("actor_name")}
    return {
        "id": event["id"],
        "type": event["type"],
        "actor": actor,
        "data": event["data"],
        "summary": describe_event(event),
        "created_at": event["created_at"].isoformat(),
    }
