"""Tickets: creation with a PID, the list a viewer may see, one ticket, status and priority.

Who may see a ticket is decided in `supportdesk.tickets.access`; events are written through
`timeline.record_event` (a new ticket's CREATED event with its first message, in one round
trip: the `open_thread` query); emails through `outbox.queue_email`; files through
`attachments.AttachmentService`. Assignment lives in
`supportdesk.tickets.assignment`, the conversation in `supportdesk.tickets.messages`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from psycopg.types.json import Jsonb

from supportdesk.core.db import Database, queries
from supportdesk.core.ratelimit import AckThrottle, PublicTicketThrottle
from supportdesk.files.uploads import Upload
from supportdesk.mail.outbound.compose import EmailComposer
from supportdesk.mail.outbound.outbox import push_after_commit, queue_email
from supportdesk.tickets.access import (
    lock_visible_ticket,
    refuse_if_merged,
    visibility,
    visible_ticket,
)
from supportdesk.tickets.attachments import AttachmentService
from supportdesk.tickets.inputs import NewTicket, TicketChange, TicketFilters
from supportdesk.tickets.notifications import Notifier
from supportdesk.tickets.participants import Copying, Person
from supportdesk.tickets.pids import take_next_pid
from supportdesk.tickets.search import NO_SEARCH, Search
from supportdesk.tickets.spam import KeptAway, keep_if_blocked
from supportdesk.tickets.timeline import record_event, ticket_events
from supportdesk.tickets.waiting import check_waiting_until, set_waiting_until
from supportdesk.webhooks.events import queue_for_event

# `total` is exact up to this many matches; past it the list says so instead of counting on.
TOTAL_CAP = 10_000

_reserve_ticket_id = queries.reserve_ticket_id
_insert_ticket = queries.insert_ticket
_open_thread = queries.open_thread
_list_tickets = queries.list_tickets
_list_tickets_text = queries.list_tickets_text
_set_ticket_fields = queries.set_ticket_fields
_requester_other_tickets = queries.requester_other_tickets

Row = Mapping[str, Any]
log = logging.getLogger("supportdesk.tickets.service")


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
        # The company mailbox it came in on (DESIGN.md section 10); null: MAIL_FROM's.
        "mailbox_id": row.get("mailbox_id"),
        # A WAITING ticket returns to OPEN then (section 12); null: no such moment.
        "waiting_until": row["waiting_until"].isoformat() if row.get("waiting_until") else None,
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


@dataclass(frozen=True)
class TicketPage:
    items: list[Row]
    total: int
    total_capped: bool
    filters: TicketFilters

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filters.per_page))


def list_query(search: Search | None) -> Any:
    """The list's query for this search: a text one also reads the messages."""
    return _list_tickets_text if search and search.words else _list_tickets


@dataclass(frozen=True)
class RequesterTickets:
    """The requester's other tickets a viewer may see: the newest few, and how many there
    are (`total`, counted to OTHER_TICKETS_CAP; `total_capped`: more than that)."""

    email: str
    items: list[Row]
    total: int
    total_capped: bool

    @property
    def more(self) -> int:
        return self.total - len(self.items)


OTHER_TICKETS_SHOWN = 5
OTHER_TICKETS_CAP = 100


# --- changes, shared by every service that moves a ticket ------------------------------------


def apply_changes(
    conn: psycopg.Connection,
    ticket: Row,
    changes: Mapping[str, str],
    *,
    actor: Row | None,
    now: datetime,
) -> Row:
    """Set status and/or priority of a locked ticket; each real change is its own event
    (STATUS_CHANGED, PRIORITY_CHANGED with {from, to}); a change to the same value writes
    nothing. Returns the ticket row as it is now."""
    real = {field: value for field, value in changes.items() if value != ticket[field]}
    if not real:
        return ticket
    updated = _set_ticket_fields(
        conn,
        id=ticket["id"],
        now=now,
        status=real.get("status", ticket["status"]),
        priority=real.get("priority", ticket["priority"]),
        assigned_to=ticket["assigned_to"],
    )
    for field, kind in (("status", "STATUS_CHANGED"), ("priority", "PRIORITY_CHANGED")):
        if field in real:
            record_event(
                conn,
                ticket["id"],
                kind,
                actor=actor,
                now=now,
                data={"from": ticket[field], "to": real[field]},
            )
    return updated


# --- the service -----------------------------------------------------------------------------


class TicketService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        composer: EmailComposer,
        attachments: AttachmentService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        public_throttle: PublicTicketThrottle,
        ack_throttle: AckThrottle,
        copying: Copying,
        notifier: Notifier,
    ):
        self.db = db
        self.redis = redis_client
        self.composer = composer
        self.attachments = attachments
        self.clock = clock
        self.public_throttle = public_throttle
        self.ack_throttle = ack_throttle
        self.copying = copying
        # Tells the staff who want it of each new ticket (tickets/notifications.py).
        self.notifier = notifier

    def create(
        self,
        new: NewTicket,
        *,
        channel: str,
        actor: Row | None = None,
        address: str | None = None,
        uploads: Sequence[Upload] = (),
        acknowledge: bool = True,
        follows_up: Row | None = None,
        copied: Sequence[Person] = (),
    ) -> Row:
        """Open a ticket: the ticket, its first message with its files, the CREATED event,
        the people `copied` on it (its participants, section 11), the customer's
        acknowledgement (unless told not to) and the notices to the staff who want them, in
        one transaction; the PID counter is taken last. A ticket that `follows_up` a CLOSED
        one links it. Without a logged-in `actor`, the web form's limits per client
        `address` and requester apply (email has limits of its own)."""
        ack_counted = False
        if channel != "EMAIL" and actor is None:
            acknowledge, ack_counted = self._admit_public(new, address, acknowledge)
            self._keep_away_if_blocked(new)
        with self.ack_throttle.given_back_on_failure(new.email, ack_counted):
            ticket, outbox_ids = self._store(
                new, channel, actor, uploads, acknowledge, follows_up, copied
            )
        self.db.after_commit(push_after_commit, self.redis, outbox_ids)
        return ticket

    def _store(
        self,
        new: NewTicket,
        channel: str,
        actor: Row | None,
        uploads: Sequence[Upload],
        acknowledge: bool,
        follows_up: Row | None,
        copied: Sequence[Person] = (),
    ) -> tuple[Row, list[int]]:
        """The ticket and all it comes with, committed; returns it and its outbox ids."""
        # Rendered now: the PID counter's lock, held from the PID to commit, waits for the
        # database alone (the PID and its signed link are put in by `numbered`).
        ack = (
            self.composer.unnumbered_acknowledgement(new.subject, new.email, new.email_message_id)
            if acknowledge
            else None
        )
        now = self.clock()
        # With files, the ticket's id is taken first: they are stored under it before the
        # transaction (which the PID counter's lock must keep short).
        reserved = self._reserve_id() if uploads else None
        with (
            self.attachments.stashed(reserved or 0, uploads) as stored,
            self.db.transaction() as conn,
        ):
            message = _open_thread(
                conn,
                ticket_id=reserved,
                author_email=new.email,
                channel=channel,
                body=new.body,
                full_body=new.full_body,
                html_body=new.html_body,
                email_message_id=new.email_message_id,
                sender_auth=new.sender_auth,
                actor_id=actor["id"] if actor else None,
                created_data=Jsonb(
                    {
                        "channel": channel,
                        "requester": {"email": new.email, "name": new.name},
                        "priority": new.priority,
                    }
                    | ({"follows_up": follows_up["pid"]} if follows_up else {})
                ),
                created_at=now,
            )
            ticket_id = message["ticket_id"]
            self.attachments.record(conn, ticket_id, message["id"], stored, actor=actor, now=now)
            # Rendered before the PID too; never to the staff member who opened it.
            notices = self.notifier.new_ticket(
                conn,
                subject=new.subject,
                requester_name=new.name,
                requester_email=new.email,
                priority=new.priority,
                channel=channel,
                text=new.body,
                actor=actor,
            )
            ticket = _insert_ticket(
                conn,
                id=ticket_id,
                pid=take_next_pid(conn, now),
                subject=new.subject,
                status="OPEN",
                priority=new.priority,
                requester_email=new.email,
                requester_name=new.name,
                channel=channel,
                assigned_to=None,
                follows_up_id=follows_up["id"] if follows_up else None,
                mailbox_id=new.mailbox_id,
                created_at=now,
            )
            # The CREATED event came with the first message (open_thread): its webhooks here,
            # now that the ticket row they describe exists.
            queue_for_event(
                conn, ticket_id, "CREATED", actor_id=actor["id"] if actor else None, now=now
            )
            if copied:
                self.copying.add(conn, ticket, copied, actor=actor, now=now)
            outbox_ids = []
            if ack:
                email = ack.numbered(ticket["pid"])
                outbox_ids.append(
                    queue_email(
                        conn,
                        email,
                        ticket_id=ticket_id,
                        ticket_mailbox_id=ticket["mailbox_id"],
                        now=now,
                    )
                )
            outbox_ids += notices.queue(conn, ticket, now)
        return ticket, outbox_ids

    def _admit_public(
        self, new: NewTicket, address: str | None, acknowledge: bool
    ) -> tuple[bool, bool]:
        """The web form's limits per client address and requester (RateLimited past them)
        and, in the same Redis round trip, the acknowledgements to the requester's address:
        anyone can type any address into the form, and its owner gets a few a day. Returns
        (acknowledge, counted)."""
        wanted = self.ack_throttle.counters(new.email) if acknowledge else []
        try:
            counted = self.public_throttle.attempt(address or "unknown", new.email, wanted)
        except redis.RedisError as ex:
            # Fail open: a customer's request is worth more than the limit, and the
            # outbox does not need Redis either (the sweeper re-enqueues).
            log.warning("public ticket limit not checked, Redis unavailable: %r", ex)
            return acknowledge, False
        return counted, counted

    def _keep_away_if_blocked(self, new: NewTicket) -> None:
        """The public form from a blocked address (tickets/spam.py): kept in the quarantine
        and KeptAway raised, with nothing opened nor sent."""
        with self.db.transaction() as conn:
            kept = keep_if_blocked(conn, new.name, new.email, new.subject, new.body)
        if kept is not None:
            raise KeptAway(kept)

    def _reserve_id(self) -> int:
        with self.db.transaction() as conn:
            return int(_reserve_ticket_id(conn))

    def list(self, viewer: Row, filters: TicketFilters) -> TicketPage:
        search = Search.of(filters.q, self.clock())
        params = visibility(viewer) | self._filter_params(viewer, filters, search)
        cap = (search.total_cap if search else None) or TOTAL_CAP
        with self.db.transaction() as conn:
            rows = list_query(search)(
                conn,
                limit=filters.per_page,
                offset=(filters.page - 1) * filters.per_page,
                cap=cap,
                **params,
            )
        counted = rows[0]["matching"]  # on every row; a page past the end is one empty row
        items = [row for row in rows if row["id"] is not None]
        return TicketPage(items, min(counted, cap), counted > cap, filters)

    @staticmethod
    def _filter_params(
        viewer: Row, filters: TicketFilters, search: Search | None
    ) -> dict[str, Any]:
        assigned = filters.assigned_to
        return {
            "status": filters.status,
            "priority": filters.priority,
            "unassigned": assigned == "none",
            "assignee_id": viewer["id"]
            if assigned == "me"
            else (assigned if isinstance(assigned, int) else None),
            "requester": filters.requester,
        } | (search.params() if search else NO_SEARCH)

    def requester_tickets(self, viewer: Row, ticket: Row) -> RequesterTickets:
        """The ticket page's "other tickets of this requester", as far as `viewer` may see."""
        with self.db.transaction() as conn:
            rows = _requester_other_tickets(
                conn,
                requester_email=ticket["requester_email"],
                ticket_id=ticket["id"],
                limit=OTHER_TICKETS_SHOWN,
                cap=OTHER_TICKETS_CAP,
                **visibility(viewer),
            )
        counted = rows[0]["matching"]
        items = [row for row in rows if row["pid"] is not None]
        return RequesterTickets(
            ticket["requester_email"].lower(),
            items,
            min(counted, OTHER_TICKETS_CAP),
            counted > OTHER_TICKETS_CAP,
        )

    def get(self, viewer: Row, pid: str) -> Row:
        with self.db.transaction() as conn:
            return visible_ticket(conn, viewer, pid)

    def timeline(self, viewer: Row, pid: str) -> list[Row]:
        with self.db.transaction() as conn:
            ticket = visible_ticket(conn, viewer, pid)
            return ticket_events(conn, ticket["id"])

    def update(self, viewer: Row, pid: str, change: TicketChange) -> Row:
        """Status, priority and `waiting_until`; each real change of the first two is an
        event, a no-op writes nothing. A ticket leaving WAITING stops waiting."""
        wanted = {f: v for f, v in (("status", change.status), ("priority", change.priority)) if v}
        with self.db.transaction() as conn:
            ticket = lock_visible_ticket(conn, viewer, pid)
            refuse_if_merged(conn, ticket)
            now = self.clock()
            # The moment it already has is no change (a form sent again later).
            moment_changes = (
                change.sets_waiting_until and change.waiting_until != ticket["waiting_until"]
            )
            if moment_changes:
                status_after = wanted.get("status", ticket["status"])
                check_waiting_until(change.waiting_until, status_after, now)
            ticket = apply_changes(conn, ticket, wanted, actor=viewer, now=now)
            if moment_changes:
                set_waiting_until(conn, ticket, change.waiting_until, now, actor=viewer)
            return visible_ticket(conn, viewer, pid)
