"""Which tickets a staff member may reach: the one visibility rule, for reading and locking.

ADMIN and SUB_ADMIN reach every ticket; an AGENT the tickets assigned to it and, where the
desk is set so (`AGENTS_SEE_UNASSIGNED`, DESIGN.md section 12), the unassigned ones too, so
that it can take one. A ticket outside the rule is "not found" (never "forbidden"), so that
ticket numbers do not leak. Every service that touches a ticket on a staff member's behalf
goes through these functions, and every SQL query that filters by viewer takes the
parameters of `visibility` and writes the one clause `VISIBLE_TO_VIEWER`
(tests/sql/test_visibility_clause.py holds every query to it).

How the setting reaches the rule, per request and without global state: the staff row
that acts carries its reach. `with_reach(user, agents_see_unassigned)` marks a freshly
loaded row with `sees_unassigned`; the two places that turn a login into an acting staff
member call it with the app's setting: the auth middleware, for every request (through the
`load_user` that `create_app` hands it), and the inbound mail service, for a staff member
who answers by email. A row that was never marked reaches what v1 allowed, never more:
the rule fails closed. Two apps built with different settings in one process (the RBAC
matrix test) each mark their own requests.

What an AGENT may do on an unassigned ticket before taking it (with the setting on): what
a colleague may do on a shared inbox's conversation in the desks people know (Front, Help
Scout, Zendesk): read it, write internal notes, and triage it (status and priority). Its
public reply takes it (tickets/messages.py): whoever answers the customer owns the
follow-up, so the customer's next email reaches the one who answered, not the pile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from supportdesk.core.db import queries
from supportdesk.core.errors import Conflict, NotFound
from supportdesk.core.vocabulary import is_manager, is_pid

_visible_ticket = queries.visible_ticket
_lock_visible_ticket = queries.lock_visible_ticket
_ticket_pid_by_id = queries.ticket_pid_by_id

Row = Mapping[str, Any]

# The rule as every SQL query that filters by viewer writes it (the ticket as `t`).
VISIBLE_TO_VIEWER = (
    "(:viewer_sees_all OR t.assigned_to = :viewer_id "
    "OR (:viewer_sees_unassigned AND t.assigned_to IS NULL))"
)
REACH = "sees_unassigned"


def with_reach(user: Row, *, agents_see_unassigned: bool) -> dict[str, Any]:
    """A staff row as it acts under the desk's setting: marked with whether it reaches the
    unassigned tickets (ADMIN and SUB_ADMIN always do)."""
    return {**user, REACH: is_manager(user) or agents_see_unassigned}


def visibility(viewer: Row) -> dict[str, Any]:
    """The rule as query parameters: every ticket query that filters by viewer takes these."""
    return {
        "viewer_sees_all": is_manager(viewer),
        "viewer_sees_unassigned": bool(viewer.get(REACH, False)),
        "viewer_id": viewer["id"],
    }


def may_see(viewer: Row, ticket: Row) -> bool:
    """The same rule on a ticket row in hand (VISIBLE_TO_VIEWER, in Python)."""
    rule = visibility(viewer)
    return (
        rule["viewer_sees_all"]
        or ticket["assigned_to"] == rule["viewer_id"]
        or (rule["viewer_sees_unassigned"] and ticket["assigned_to"] is None)
    )


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


def refuse_if_merged(conn: psycopg.Connection, ticket: Row) -> None:
    """A ticket merged into another is closed for good: its conversation, people and mail
    live in the target now (tickets/merging.py), so a reply, a note or a new status is
    written there, never on the husk (409, naming the target)."""
    if ticket["merged_into_id"] is not None:
        target = _ticket_pid_by_id(conn, id=ticket["merged_into_id"])
        raise Conflict(f"This ticket was merged into #{target}: write there instead.")
