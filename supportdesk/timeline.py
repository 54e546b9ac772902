"""The timeline: each ticket event as data for the API and as a sentence for people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The ticket_event_type enum of the schema, in its order.
EVENT_TYPES = (
    "CREATED",
    "ASSIGNED",
    "UNASSIGNED",
    "STATUS_CHANGED",
    "PRIORITY_CHANGED",
    "MESSAGE_ADDED",
    "NOTE_ADDED",
    "ATTACHMENT_ADDED",
    "EMAIL_QUEUED",
    "EMAIL_SENT",
    "EMAIL_FAILED",
    "EMAIL_RECEIVED",
)
STATUS_LABELS = {
    "OPEN": "Open",
    "IN_PROGRESS": "In progress",
    "WAITING": "Waiting",
    "RESOLVED": "Resolved",
    "CLOSED": "Closed",
}
PRIORITY_LABELS = {"LOW": "Low", "NORMAL": "Normal", "HIGH": "High", "URGENT": "Urgent"}
CHANNEL_LABELS = {"WEB": "the web form", "EMAIL": "email", "API": "the API"}


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
