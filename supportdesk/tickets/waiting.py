"""`waiting_until` (DESIGN.md section 12): the moment a WAITING ticket returns to OPEN, set
by PATCH and the ticket page; the scheduler's job in tickets/timed.py brings it back."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg

from supportdesk.core.db import queries
from supportdesk.core.errors import ValidationFailed
from supportdesk.tickets.timeline import record_event

_set_waiting_until = queries.set_waiting_until

Row = Mapping[str, Any]


def check_waiting_until(moment: datetime | None, status: str, now: datetime) -> None:
    """A moment is for a ticket that is (or becomes) WAITING, and lies ahead; clearing one
    (None) is always allowed. ValidationFailed otherwise."""
    if moment is None:
        return
    if status != "WAITING":
        raise ValidationFailed(
            {"waiting_until": "Only a WAITING ticket waits until a moment: set status WAITING."}
        )
    if moment <= now:
        raise ValidationFailed({"waiting_until": "Give a moment in the future."})


def set_waiting_until(
    conn: psycopg.Connection,
    ticket: Row,
    moment: datetime | None,
    now: datetime,
    *,
    actor: Row | None,
) -> Row:
    """Set (or clear) the moment on a locked ticket checked by `check_waiting_until`, with
    its WAITING_UNTIL_SET event (ISO 8601 `from` and `to`, null for none)."""
    before = ticket.get("waiting_until")
    if before == moment:
        return ticket
    updated = _set_waiting_until(conn, id=ticket["id"], waiting_until=moment, now=now)
    record_event(
        conn,
        ticket["id"],
        "WAITING_UNTIL_SET",
        actor=actor,
        now=now,
        data={"from": _iso(before), "to": _iso(moment)},
    )
    return updated


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
