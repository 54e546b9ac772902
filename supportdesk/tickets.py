"""Tickets: creation with a PID, the list a viewer may see, status, priority, assignment.

One rule decides which tickets a staff member may see (`_visibility`): ADMIN and SUB_ADMIN
see every ticket, an AGENT only those assigned to it. Every read goes through it, and a
ticket outside it is "not found", so that ticket numbers do not leak.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from psycopg.types.json import Jsonb

from supportdesk.db import Database, queries
from supportdesk.emails import EmailComposer, OutboundEmail
from supportdesk.errors import Forbidden, NotFound, Unauthenticated, ValidationFailed
from supportdesk.pids import take_next_pid
from supportdesk.ratelimit import PublicTicketThrottle
from supportdesk.text import (
    WHOLE_NUMBER,
    clean_choice,
    clean_email,
    clean_line,
    clean_text,
    invalid_characters,
)
from supportdesk.worker.queue import enqueue_emails

STATUSES = ("OPEN", "IN_PROGRESS", "WAITING", "RESOLVED", "CLOSED")
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")
CHANNELS = ("WEB", "EMAIL", "API")
MAX_BODY = 50_000
# `total` is exact up to this many matches; past it the list says so instead of counting on.
TOTAL_CAP = 10_000
MAX_PER_PAGE = 100
MAX_OFFSET = 100_000  # deeper pages cost an index walk this long: narrow the filters instead
PID_SHAPE = re.compile(r"^[0-9]{6}-[0-9]{5,}$")

_reserve_ticket_id = queries.reserve_ticket_id
_insert_ticket = queries.insert_ticket
_insert_message = queries.insert_message
_insert_event = queries.insert_event
_insert_outbox_email = queries.insert_outbox_email
_visible_ticket = queries.visible_ticket
_lock_visible_ticket = queries.lock_visible_ticket
_list_tickets = queries.list_tickets
_count_tickets = queries.count_tickets
_set_ticket_fields = queries.set_ticket_fields
_ticket_thread = queries.ticket_thread
_ticket_timeline = queries.ticket_timeline
_user_by_id = queries.user_by_id
_share_lock_users = queries.share_lock_users

Row = Mapping[str, Any]
log = logging.getLogger("supportdesk.tickets")


# --- input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTicket:
    name: str
    email: str
    subject: str
    body: str
    priority: str


def parse_new_ticket(data: Mapping[str, Any], *, strict: bool = True) -> NewTicket:
    """Validate a creation request; `strict` also refuses fields we do not know."""
    problems: dict[str, str] = {}
    if strict:
        for field in sorted(set(data) - {"name", "email", "subject", "body", "priority"}):
            problems[field] = "Unknown field."
    name = clean_line(data.get("name"), "name", 200, problems, "Enter your name.")
    email = clean_email(data.get("email"), problems, missing="Enter your email address.")
    subject = clean_line(
        data.get("subject"),
        "subject",
        255,
        problems,
        "Enter a subject: a few words about your request.",
    )
    body = clean_text(data.get("body"), "body", MAX_BODY, problems, "Describe your request.")
    priority = clean_choice(data.get("priority") or "NORMAL", "priority", PRIORITIES, problems)
    if problems:
        raise ValidationFailed(problems)
    return NewTicket(name, email, subject, body, priority)


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

    def one(name: str) -> str | None:
        value = params.get(name)
        if isinstance(value, list):
            problems[name] = "Give this parameter once."
            return None
        return value.strip() if isinstance(value, str) and value.strip() else None

    def number(name: str, default: int, low: int, high: int) -> int:
        raw = one(name)
        if raw is None:
            return default
        if not WHOLE_NUMBER.match(raw) or not low <= int(raw) <= high:
            problems[name] = f"Use a whole number from {low} to {high}."
            return default
        return int(raw)

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
    elif q is not None and len(q) < 3:
        problems["q"] = "Search for at least 3 characters."
    elif q is not None and len(q) > 200:
        problems["q"] = "Search for at most 200 characters."
    per_page = number("per_page", 25, 1, MAX_PER_PAGE)
    page = number("page", 1, 1, 10**9)
    if "page" not in problems and "per_page" not in problems and (page - 1) * per_page > MAX_OFFSET:
        problems["page"] = "That page is too deep; narrow the filters or search instead."
    if problems:
        raise ValidationFailed(problems, "Some filters are not valid.")
    return TicketFilters(status, priority, assigned, q, page, per_page)


def _like_pattern(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- representations -----------------------------------------------------------------------


def public_ticket(row: Row) -> dict[str, Any]:
    assignee = None
    if row["assigned_to"] is not None:
        assignee = {
            "id": row["assigned_to"],
            "name": row.get("assignee_name"),
            "email": row.get("assignee_email"),
        }
    return {
        "pid": row["pid"],
        "subject": row["subject"],
        "status": row["status"],
        "priority": row["priority"],
        "requester": {"email": row["requester_email"], "name": row["requester_name"]},
        "assigned_to": assignee,
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def _person(user: Row | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user["id"], "name": user["name"]}


@dataclass(frozen=True)
class TicketPage:
    items: list[Row]
    total: int
    total_capped: bool
    filters: TicketFilters

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filters.per_page))


# --- the service -----------------------------------------------------------------------------


def _visibility(viewer: Row) -> dict[str, Any]:
    """The one rule: which tickets this staff member may see."""
    return {"viewer_sees_all": viewer["role"] in ("ADMIN", "SUB_ADMIN"), "viewer_id": viewer["id"]}


class TicketService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        composer: EmailComposer,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        public_throttle: PublicTicketThrottle | None = None,
    ):
        self.db = db
        self.redis = redis_client
        self.composer = composer
        self.clock = clock
        self.public_throttle = public_throttle

    # --- creating ------------------------------------------------------------------------

    def create(
        self, new: NewTicket, *, channel: str, actor: Row | None = None, address: str | None = None
    ) -> Row:
        """Open a ticket: the ticket, its first message, the CREATED event and the customer's
        acknowledgement, in one transaction; the PID counter is taken last. Without a
        logged-in `actor`, the public limits per client `address` and requester apply."""
        if actor is None and self.public_throttle is not None:
            try:
                self.public_throttle.attempt(address or "unknown", new.email)
            except redis.RedisError as ex:
                # Fail open: a customer's request is worth more than the limit, and the
                # outbox does not need Redis either (the sweeper re-enqueues).
                log.warning("public ticket limit not checked, Redis unavailable: %r", ex)
        now = self.clock()
        with self.db.transaction() as conn:
            ticket_id = _reserve_ticket_id(conn)
            _insert_message(
                conn,
                ticket_id=ticket_id,
                author="CUSTOMER",
                author_user_id=None,
                author_email=new.email,
                visibility="PUBLIC",
                channel=channel,
                body=new.body,
                email_message_id=None,
                created_at=now,
            )
            _insert_event(
                conn,
                ticket_id=ticket_id,
                type="CREATED",
                actor_id=_id(actor),
                created_at=now,
                data=Jsonb(
                    {
                        "channel": channel,
                        "requester": {"email": new.email, "name": new.name},
                        "priority": new.priority,
                    }
                ),
            )
            pid = take_next_pid(conn, now)
            ticket = _insert_ticket(
                conn,
                id=ticket_id,
                pid=pid,
                subject=new.subject,
                status="OPEN",
                priority=new.priority,
                requester_email=new.email,
                requester_name=new.name,
                channel=channel,
                assigned_to=None,
                created_at=now,
            )
            outbox_id = self._queue(conn, ticket, self.composer.acknowledgement(ticket, None), now)
        enqueue_emails(self.redis, [outbox_id])
        return ticket

    def _queue(
        self, conn: psycopg.Connection, ticket: Row, email: OutboundEmail, now: datetime
    ) -> int:
        row = _insert_outbox_email(
            conn,
            ticket_id=ticket["id"],
            ticket_message_id=None,
            to_address=email.to_address,
            subject=email.subject,
            body_text=email.body_text,
            body_html=None,
            message_id=email.message_id,
            in_reply_to=email.in_reply_to,
            references=email.references,
            headers=Jsonb(email.headers),
            created_at=now,
        )
        return row["id"]

    # --- reading -------------------------------------------------------------------------

    def list(self, viewer: Row, filters: TicketFilters) -> TicketPage:
        params = _visibility(viewer) | self._filter_params(viewer, filters)
        with self.db.transaction() as conn:
            items = _list_tickets(
                conn, limit=filters.per_page, offset=(filters.page - 1) * filters.per_page, **params
            )
            counted = _count_tickets(conn, cap=TOTAL_CAP, **params)
        return TicketPage(items, min(counted, TOTAL_CAP), counted > TOTAL_CAP, filters)

    @staticmethod
    def _filter_params(viewer: Row, filters: TicketFilters) -> dict[str, Any]:
        assigned = filters.assigned_to
        return {
            "status": filters.status,
            "priority": filters.priority,
            "unassigned": assigned == "none",
            "assignee_id": viewer["id"]
            if assigned == "me"
            else (assigned if isinstance(assigned, int) else None),
            "q": filters.q,
            "q_like": _like_pattern(filters.q) if filters.q else None,
        }

    def get(self, viewer: Row, pid: str) -> Row:
        with self.db.transaction() as conn:
            return self._visible(conn, viewer, pid)

    def thread(self, viewer: Row, pid: str) -> tuple[Row, list[Row]]:
        with self.db.transaction() as conn:
            ticket = self._visible(conn, viewer, pid)
            return ticket, _ticket_thread(conn, ticket_id=ticket["id"])

    def timeline(self, viewer: Row, pid: str) -> list[Row]:
        with self.db.transaction() as conn:
            ticket = self._visible(conn, viewer, pid)
            return _ticket_timeline(conn, ticket_id=ticket["id"])

    @staticmethod
    def _visible(conn: psycopg.Connection, viewer: Row, pid: str) -> Row:
        ticket = (
            _visible_ticket(conn, pid=pid, **_visibility(viewer)) if PID_SHAPE.match(pid) else None
        )
        if ticket is None:
            raise NotFound("No such ticket.")
        return ticket

    # --- changing ------------------------------------------------------------------------

    def update(self, viewer: Row, pid: str, data: Mapping[str, Any]) -> Row:
        """Status and priority; each real change is an event, a no-op writes nothing."""
        problems: dict[str, str] = {}
        for field in sorted(set(data) - {"status", "priority"}):
            problems[field] = "Unknown field."
        if not data:
            problems["status"] = "Give a status or a priority to change."
        wanted = {}
        if "status" in data:
            wanted["status"] = clean_choice(data["status"], "status", STATUSES, problems)
        if "priority" in data:
            wanted["priority"] = clean_choice(data["priority"], "priority", PRIORITIES, problems)
        if problems:
            raise ValidationFailed(problems)
        now = self.clock()
        with self.db.transaction() as conn:
            before = self._lock(conn, viewer, pid)
            changes = {f: value for f, value in wanted.items() if value != before[f]}
            if changes:
                _set_ticket_fields(
                    conn,
                    id=before["id"],
                    now=now,
                    status=changes.get("status", before["status"]),
                    priority=changes.get("priority", before["priority"]),
                    assigned_to=before["assigned_to"],
                )
            for field, event in (("status", "STATUS_CHANGED"), ("priority", "PRIORITY_CHANGED")):
                if field in changes:
                    _insert_event(
                        conn,
                        ticket_id=before["id"],
                        type=event,
                        actor_id=viewer["id"],
                        created_at=now,
                        data=Jsonb({"from": before[field], "to": changes[field]}),
                    )
            return _visible_ticket(conn, pid=pid, **_visibility(viewer))

    def assign(self, actor: Row, pid: str, data: Mapping[str, Any]) -> Row:
        """Assign to an active staff member (or nobody); the new assignee is notified."""
        problems: dict[str, str] = {}
        for field in sorted(set(data) - {"user_id"}):
            problems[field] = "Unknown field."
        if "user_id" not in data:
            problems["user_id"] = "Give the id of a staff member, or null to unassign."
        user_id = data.get("user_id")
        if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
            problems["user_id"] = "Give the id of a staff member, or null to unassign."
        if problems:
            raise ValidationFailed(problems)
        now = self.clock()
        outbox_ids: list[int] = []
        with self.db.transaction() as conn:
            ticket = self._lock(conn, actor, pid)
            # The actor and the assignee as they are now, share-locked (in id order) so that
            # neither can be deactivated or demoted until this assignment is committed.
            people = {
                row["id"]: row
                for row in _share_lock_users(
                    conn, ids=[actor["id"]] + ([user_id] if user_id is not None else [])
                )
            }
            current_actor = people.get(actor["id"])
            if current_actor is None or not current_actor["is_active"]:
                raise Unauthenticated("Your account is not active.")
            if current_actor["role"] not in ("ADMIN", "SUB_ADMIN"):
                raise Forbidden()
            assignee = None
            if user_id is not None:
                assignee = people.get(user_id)
                if assignee is None or not assignee["is_active"]:
                    raise ValidationFailed({"user_id": "Choose an active staff member."})
            if ticket["assigned_to"] == user_id:
                return _visible_ticket(conn, pid=pid, **_visibility(actor))
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
                _insert_event(
                    conn,
                    ticket_id=ticket["id"],
                    type="UNASSIGNED",
                    actor_id=actor["id"],
                    created_at=now,
                    data=Jsonb({"from": _person(previous)}),
                )
            else:
                _insert_event(
                    conn,
                    ticket_id=ticket["id"],
                    type="ASSIGNED",
                    actor_id=actor["id"],
                    created_at=now,
                    data=Jsonb({"from": _person(previous), "to": _person(assignee)}),
                )
                if assignee["id"] != actor["id"]:  # no need to tell people what they just did
                    email = self.composer.assignment_notice(ticket, assignee, actor)
                    outbox_ids.append(self._queue(conn, ticket, email, now))
            result = _visible_ticket(conn, pid=pid, **_visibility(actor))
        enqueue_emails(self.redis, outbox_ids)
        return result

    @staticmethod
    def _lock(conn: psycopg.Connection, viewer: Row, pid: str) -> Row:
        ticket = (
            _lock_visible_ticket(conn, pid=pid, **_visibility(viewer))
            if PID_SHAPE.match(pid)
            else None
        )
        if ticket is None:
            raise NotFound("No such ticket.")
        return ticket


def _id(user: Row | None) -> int | None:
    return None if user is None else user["id"]
