"""Which ticket changes tell the webhooks, and the delivery rows they write (DESIGN.md
section 13), in the transaction of the change itself.

The one hook point is `tickets.timeline.record_event`, where every change of a ticket
writes its event (and `TicketService.create`, whose CREATED event is written by the
`open_thread` query, calls `queue_for_event` itself). So a delivery exists exactly when
its change committed. The insert also sends a PostgreSQL NOTIFY, which PostgreSQL delivers
only after the commit; the worker's listener puts the ids on the Redis queue
(worker/webhooks.py), and its sweeper finds any it missed.

Events, from the ticket events that carry them:

- `ticket.created`: CREATED (a new ticket by any way in, a split).
- `message.created`: MESSAGE_ADDED, NOTE_ADDED, EMAIL_RECEIVED (a message added by staff
  or the customer, by any channel; not the first message of a new ticket, which is the
  ticket.created). INTERNAL notes fire it too, with `message.visibility: "INTERNAL"`: an
  integration that shows messages to customers must skip those (README).
- `ticket.status_changed`: STATUS_CHANGED, AUTO_CLOSED, SPAM (`changes: {from, to}`).
- `ticket.assigned`: ASSIGNED and UNASSIGNED (`changes: {from, to}`, `to` null when
  unassigned).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from supportdesk.core.db import queries

_queue_webhook_deliveries = queries.queue_webhook_deliveries

# Ticket event type -> webhook event.
EVENT_OF = {
    "CREATED": "ticket.created",
    "MESSAGE_ADDED": "message.created",
    "NOTE_ADDED": "message.created",
    "EMAIL_RECEIVED": "message.created",
    "STATUS_CHANGED": "ticket.status_changed",
    "AUTO_CLOSED": "ticket.status_changed",
    "SPAM": "ticket.status_changed",
    "ASSIGNED": "ticket.assigned",
    "UNASSIGNED": "ticket.assigned",
}


def changes_of(kind: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
    """What changed, as the payload's `changes` says it."""
    if EVENT_OF.get(kind) == "ticket.status_changed":
        return {"from": data.get("from"), "to": data.get("to")}
    if kind in ("ASSIGNED", "UNASSIGNED"):
        return {"from": data.get("from"), "to": data.get("to")}
    return None


def queue_for_event(
    conn: psycopg.Connection,
    ticket_id: int,
    kind: str,
    *,
    actor_id: int | None,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> list[int]:
    """The deliveries a ticket event calls for, written in the caller's transaction (none
    for an event no webhook event stands for); returns their ids."""
    event = EVENT_OF.get(kind)
    if event is None:
        return []
    data = data or {}
    message_id = data.get("message_id") if event == "message.created" else None
    rows = _queue_webhook_deliveries(
        conn,
        event=event,
        ticket_id=ticket_id,
        actor_id=actor_id,
        message_id=message_id,
        changes=Jsonb(changes_of(kind, data)),
        now=now,
    )
    return [row["id"] for row in rows]
