"""Which tickets a staff member may reach: the one visibility rule, for reading and locking.

ADMIN and SUB_ADMIN reach every ticket; an AGENT only the tickets assigned to it. A ticket
outside the rule is "not found" (never "forbidden"), so that ticket numbers do not leak.
Every service that touches a ticket on a staff member's behalf goes through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from supportdesk.core.db import queries
from supportdesk.core.errors import NotFound
from supportdesk.core.vocabulary import is_manager, is_pid

_visible_ticket = queries.visible_ticket
_lock_visible_ticket = queries.lock_visible_ticket

Row = Mapping[str, Any]


def visibility(viewer: Row) -> dict[str, Any]:
    """The rule as query parameters: every ticket query that filters by viewer takes these."""
    return {"viewer_sees_all": is_manager(viewer), "viewer_id": viewer["id"]}


def visible_ticket(conn: psycopg.Connection, viewer: Row, pid: str) -> Row:
    """The ticket with its assignee's name and email, if `viewer` may see it; else NotFound."""
    ticket = _visible_ticket(conn, pid=pid, **visibility(viewer)) if is_pid(pid) else None
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket


def lock_visible_ticket(conn: psycopg.Connection, viewer: Row, pid: str) -> Row:
    """The same ticket row, locked until the caller's transaction ends; else NotFound."""
    ticket = _lock_visible_ticket(conn, pid=pid, **visibility(viewer)) if is_pid(pid) else None
    if ticket is None:
        raise NotFound("No such ticket.")
    return ticket
