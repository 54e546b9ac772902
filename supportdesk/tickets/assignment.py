"""Assigning a ticket to an active staff member, or to nobody (ADMIN and SUB_ADMIN only),
and taking one (DESIGN.md section 12): assigning it to oneself.

The new assignee is emailed a notice, unless they assigned the ticket to themselves or
turned that notice off (tickets/notifications.py).

Taking: whoever may see a ticket may take it (an AGENT: an unassigned one, where
AGENTS_SEE_UNASSIGNED lets it see those; ADMIN and SUB_ADMIN: any, from whoever has it).
Two people taking the same ticket at once are serialized by its row lock: the first takes
it; the second finds it assigned to someone other than it saw, and gets a 409, never a
silent takeover.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Conflict, Forbidden, Unauthenticated, ValidationFailed
from supportdesk.core.vocabulary import is_manager
from supportdesk.mail.outbound.compose import EmailComposer
from supportdesk.mail.outbound.outbox import push_after_commit
from supportdesk.tickets.access import lock_visible_ticket, visible_ticket
from supportdesk.tickets.inputs import Assignment
from supportdesk.tickets.notifications import Notifier
from supportdesk.tickets.timeline import record_event

_user_by_id = queries.user_by_id
_share_lock_users = queries.share_lock_users
_set_ticket_fields = queries.set_ticket_fields
_lock_ticket = queries.lock_ticket

Row = Mapping[str, Any]


def _person(user: Row | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user["id"], "name": user["name"]}


def take_locked(conn: psycopg.Connection, ticket: Row, taker: Row, now: datetime) -> Row:
    """Assign a ticket locked by the caller to `taker` (who acts): the updated ticket and
    an ASSIGNED event by the taker; no notice (nobody needs telling what they just did)."""
    previous = (
        _user_by_id(conn, id=ticket["assigned_to"]) if ticket["assigned_to"] is not None else None
    )
    taken = _set_ticket_fields(
        conn,
        id=ticket["id"],
        now=now,
        status=ticket["status"],
        priority=ticket["priority"],
        assigned_to=taker["id"],
    )
    record_event(
        conn,
        ticket["id"],
        "ASSIGNED",
        actor=taker,
        now=now,
        data={"from": _person(previous), "to": _person(taker)},
    )
    return taken


class AssignmentService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        composer: EmailComposer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        notifier: Notifier,
    ):
        self.db = db
        self.redis = redis_client
        self.composer = composer
        self.clock = clock
        self.notifier = notifier

    def assign(self, actor: Row, pid: str, assignment: Assignment) -> Row:
        """Assign to an active staff member (or nobody): an ASSIGNED or UNASSIGNED event;
        assigning to the current assignee changes nothing."""
        user_id = assignment.user_id
        outbox_ids: list[int] = []
        with self.db.transaction() as conn:
            ticket = lock_visible_ticket(conn, actor, pid)
            now = self.clock()  # read under the lock: events are timed in the order they happen
            # The actor and the assignee as they are now, share-locked (in id order) so that
            # neither can be deactivated or demoted until this assignment is committed.
            ids = [actor["id"]] + ([user_id] if user_id is not None else [])
            people = {row["id"]: row for row in _share_lock_users(conn, ids=ids)}
            current_actor = people.get(actor["id"])
            if current_actor is None or not current_actor["is_active"]:
                raise Unauthenticated("Your account is not active.")
            if not is_manager(current_actor):
                raise Forbidden()
            if ticket["assigned_to"] == user_id:
                # No change, even to a deactivated assignee: the dialog offers to keep one.
                return visible_ticket(conn, actor, pid)
            assignee = None
            if user_id is not None:
                assignee = people.get(user_id)
                if assignee is None or not assignee["is_active"]:
                    raise ValidationFailed({"user_id": "Choose an active staff member."})
            previous = (
                _user_by_id(conn, id=ticket["assigned_to"])
                if ticket["assigned_to"] is not None
                else None
            )
            ticket = _set_ticket_fields(
                conn,
                id=ticket["id"],
                now=now,
                status=ticket["status"],
                priority=ticket["priority"],
                assigned_to=user_id,
            )
            if assignee is None:
                record_event(
                    conn,
                    ticket["id"],
                    "UNASSIGNED",
                    actor=actor,
                    now=now,
                    data={"from": _person(previous)},
                )
            else:
                record_event(
                    conn,
                    ticket["id"],
                    "ASSIGNED",
                    actor=actor,
                    now=now,
                    data={"from": _person(previous), "to": _person(assignee)},
                )
                # Never to whoever assigned it to themselves (tickets/notifications.py).
                outbox_ids += self.notifier.assigned(conn, ticket, assignee, actor, now)
            result = visible_ticket(conn, actor, pid)
        self.db.after_commit(push_after_commit, self.redis, outbox_ids)
        return result

    def take(self, taker: Row, pid: str, *, shown_unassigned: bool = False) -> Row:
        """Assign a ticket the taker may see to the taker. Already theirs: nothing changes.
        Assigned to someone else by the time the lock is held, when the taker saw it
        otherwise (in this transaction, or, `shown_unassigned`, on the page it clicked
        Take on): Conflict, someone took it first."""
        with self.db.transaction() as conn:
            seen = visible_ticket(conn, taker, pid)  # NotFound for what it may not see
            ticket = _lock_ticket(conn, id=seen["id"])
            now = self.clock()  # read under the lock: events are timed in the order they happen
            # The taker as it is now, share-locked: not deactivated until this commits.
            current = next(iter(_share_lock_users(conn, ids=[taker["id"]])), None)
            if current is None or not current["is_active"]:
                raise Unauthenticated("Your account is not active.")
            holder = ticket["assigned_to"]
            if holder == taker["id"]:
                return visible_ticket(conn, taker, pid)
            if holder is not None and (shown_unassigned or holder != seen["assigned_to"]):
                first = _user_by_id(conn, id=holder)
                raise Conflict(
                    f"{first['name'] if first else 'Someone else'} took this ticket first.",
                    details={"assigned_to": _person(first)},
                )
            take_locked(conn, ticket, taker, now)
            return visible_ticket(conn, taker, pid)
