"""The timeline: writing ticket events, and reading each as data and as a sentence."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
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
    event with its first message (the table itself refuses updates and deletes)."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r}")
    return _insert_event(
        conn,
        ticket_id=ticket_id,
        type=kind,
        actor_id=None if actor is None else actor["id"],
        data=Jsonb(dict(data or {})),
        created_at=now,
    )


def ticket_events(conn: psycopg.Connection, ticket_id: int) -> list[Row]:
    """Every event of a ticket, oldest first, with the actor's name."""
    return _ticket_timeline(conn, ticket_id=ticket_id)


def _name(person: Mapping[str, Any] | None) -> str:
    return person["name"] if person else "nobody"


def describe_event(event: Mapping[str, Any]) -> str:
    """One human sentence: "Ana assigned this to Bo", "Status: Open → Resolved"."""
    data = event["data"] or {}
    actor = event.get("actor_name") or "Someone"
    kind = event["type"]
    if kind == "CREATED":
        requester = data.get("requester", {}).get("name", "The customer")
        via = CHANNEL_LABELS.get(data.get("channel", ""), "the web form")
        if event.get("actor_id"):
            return f"{actor} opened this ticket for {requester} via {via}"
        return f"{requester} opened this ticket via {via}"
    if kind == "ASSIGNED":
        if data.get("from"):
            return f"{actor} reassigned this from {_name(data['from'])} to {_name(data.get('to'))}"
        return f"{actor} assigned this to {_name(data.get('to'))}"
    if kind == "UNASSIGNED":
        return f"{actor} unassigned {_name(data.get('from'))}"
    if kind == "STATUS_CHANGED":
        return (
            f"Status: {STATUS_LABELS.get(data.get('from'), data.get('from'))} → "
            f"{STATUS_LABELS.get(data.get('to'), data.get('to'))}"
        )
    if kind == "PRIORITY_CHANGED":
        return (
            f"Priority: {PRIORITY_LABELS.get(data.get('from'), data.get('from'))} → "
            f"{PRIORITY_LABELS.get(data.get('to'), data.get('to'))}"
        )
    if kind == "MESSAGE_ADDED":
        return f"{actor} replied to the customer" if event.get("actor_id") else "The customer wrote"
    if kind == "NOTE_ADDED":
        return f"{actor} added an internal note"
    if kind == "ATTACHMENT_ADDED":
        who = actor if event.get("actor_id") else "The customer"
        return f"{who} attached {data.get('filename', 'a file')}"
    if kind == "EMAIL_RECEIVED":
        sender = data.get("from") or "the customer"
        if data.get("automatic"):
            return f"An automatic email from {sender} was received"
        if data.get("matched_by_subject_only"):
            return (
                f"An email from {sender} was received, matched by the ticket number in its "
                "subject only (it may not be from the customer; it changed nothing)"
            )
        return f"The customer wrote by email ({sender})"
    if kind in ("EMAIL_SENT", "EMAIL_FAILED"):
        what = EMAIL_KIND_LABELS.get(data.get("kind", ""), "email").capitalize()
        if kind == "EMAIL_SENT":
            return f"{what} emailed to {data.get('to', 'the recipient')}"
        return f"{what} to {data.get('to', 'the recipient')} could not be delivered: " + str(
            data.get("error", "unknown error")
        )
    return kind.replace("_", " ").capitalize()


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
