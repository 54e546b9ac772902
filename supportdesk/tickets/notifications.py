"""Notices to staff (DESIGN.md section 12): who is told of what, through the outbox.

Four events are told, each as a NOTICE or ASSIGNMENT email (`Auto-Submitted:
auto-generated`, Reply-To carrying the ticket's STAFF token, as every notice to staff),
queued in the transaction that makes the change:

- a new ticket (from the form, email, the webhook, a mailbox, a forward; not one a staff
  member writes first, which is theirs already) to the active staff with `notify_new_ticket`
  who may see it (an AGENT: only with AGENTS_SEE_UNASSIGNED, as a new ticket is unassigned);
- a customer reply (the requester's or a participant's) to the assignee and the followers
  with `notify_customer_reply`, each once per NOTICE_COALESCE (a burst is told once);
- an assignment to the new assignee with `notify_assigned` (never to whoever assigned it to
  themselves: taking a ticket tells nobody);
- a mention in an INTERNAL note written on the desk: `@` and an active staff member's email
  (`@ana@example.com`) or login name, the local part of that email (`@ana`), with
  `notify_mentioned`. A login name that two active staff share mentions neither (the email
  tells them apart). A PUBLIC reply mentions nobody: it goes to the customer.

For every event: a recipient must be active, want that notice, and may see the ticket at
the moment the notice is queued (tickets/access.py, under the desk's AGENTS_SEE_UNASSIGNED):
a follower who lost access (an AGENT whose ticket went to someone else) is not told, and a
mention of someone who may not see the ticket mails nobody and grants nothing (the note
does not open the ticket to them, and its text never reaches them). Each person is told
once per event, whatever ways they are concerned (assignee, follower, mentioned twice),
and the author of the change is never told of their own action.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from supportdesk.core.db import queries
from supportdesk.mail.outbound.compose import EmailComposer, UnnumberedEmail
from supportdesk.mail.outbound.outbox import queue_email
from supportdesk.tickets.access import may_see, with_reach

_staff_wanting_new_tickets = queries.staff_wanting_new_tickets
_ticket_follower_ids = queries.ticket_follower_ids
_users_by_ids = queries.users_by_ids
_active_staff_named = queries.active_staff_named
_customer_reply_notice_since = queries.customer_reply_notice_since

# The notices of the customer replies that follow one within this time are not sent: it
# said so.
NOTICE_COALESCE = timedelta(minutes=10)

# `@` then an email address or a login name, not inside a word or an address (`cleo@x.org`
# mentions nobody); a sentence's full stop after it is not part of it.
_MENTION = re.compile(r"(?<![\w.+@-])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")
MAX_MENTIONS = 50  # a note that names more is not a way to mail the whole staff

Row = Mapping[str, Any]


def mentioned_names(text: str) -> list[str]:
    """The emails and login names mentioned in `text`, lower-case, in order, once each."""
    names: dict[str, None] = {}
    for match in _MENTION.finditer(text):
        name = match[1].rstrip(".-").lower()
        if name:
            names.setdefault(name, None)
    return list(names)[:MAX_MENTIONS]


@dataclass(frozen=True)
class PendingNewTicket:
    """New-ticket notices rendered before the ticket has its PID (`numbered` puts it in)."""

    emails: tuple[UnnumberedEmail, ...]

    def queue(self, conn: psycopg.Connection, ticket: Row, now: datetime) -> list[int]:
        return [
            queue_email(conn, e.numbered(ticket["pid"]), ticket_id=ticket["id"], now=now)
            for e in self.emails
        ]


class Notifier:
    """Decides who is told of an event and queues their notices in the caller's
    transaction; returns the outbox ids to push after commit."""

    def __init__(self, composer: EmailComposer, *, agents_see_unassigned: bool = False):
        self.composer = composer
        # A notifier built without the desk's setting reaches what v1 allowed, never more.
        self.agents_see_unassigned = agents_see_unassigned

    def _may_see(self, user: Row, ticket: Row) -> bool:
        reach = with_reach(user, agents_see_unassigned=self.agents_see_unassigned)
        return bool(user["is_active"]) and may_see(reach, ticket)

    def new_ticket(
        self,
        conn: psycopg.Connection,
        *,
        subject: str,
        requester_name: str,
        requester_email: str,
        priority: str,
        channel: str,
        text: str,
        actor: Row | None,
    ) -> PendingNewTicket:
        """The notices of a ticket about to be numbered (unassigned, as every new one),
        to the staff who want them and may see it, but its `actor`."""
        unassigned = {"assigned_to": None}
        emails = tuple(
            self.composer.unnumbered_new_ticket_notice(
                to=user,
                subject=subject,
                requester_name=requester_name,
                requester_email=requester_email,
                priority=priority,
                channel=channel,
                text=text,
            )
            for user in _staff_wanting_new_tickets(conn)
            if (actor is None or user["id"] != actor["id"]) and self._may_see(user, unassigned)
        )
        return PendingNewTicket(emails)

    def customer_replied(
        self,
        conn: psycopg.Connection,
        ticket: Row,
        text: str,
        now: datetime,
        *,
        writer: str | None = None,
    ) -> list[int]:
        """The assignee and the followers who want it, unless told of a reply on this
        ticket within NOTICE_COALESCE. `writer`: who wrote it, when not the requester (a
        participant, section 11)."""
        assignee_id = ticket["assigned_to"]
        follower_ids = [r["user_id"] for r in _ticket_follower_ids(conn, ticket_id=ticket["id"])]
        ids = ([assignee_id] if assignee_id is not None else []) + follower_ids
        outbox_ids = []
        for user in self._people(conn, ids):
            if not user["notify_customer_reply"] or not self._may_see(user, ticket):
                continue
            if _customer_reply_notice_since(
                conn,
                ticket_id=ticket["id"],
                to_address=user["email"],
                since=now - NOTICE_COALESCE,
            ):
                continue
            notice = self.composer.customer_replied(
                ticket,
                user,
                text,
                NOTICE_COALESCE,
                following=user["id"] != assignee_id,
                writer=writer or ticket["requester_name"],
            )
            outbox_ids.append(queue_email(conn, notice, ticket_id=ticket["id"], now=now))
        return outbox_ids

    def assigned(
        self, conn: psycopg.Connection, ticket: Row, assignee: Row, actor: Row, now: datetime
    ) -> list[int]:
        """The new assignee, unless they assigned it themselves or do not want it."""
        if assignee["id"] == actor["id"] or not assignee["notify_assigned"]:
            return []
        if not self._may_see(assignee, ticket):
            return []
        notice = self.composer.assignment_notice(ticket, assignee, actor)
        return [queue_email(conn, notice, ticket_id=ticket["id"], now=now)]

    def note_added(
        self, conn: psycopg.Connection, ticket: Row, note: str, author: Row, now: datetime
    ) -> list[int]:
        """The staff an INTERNAL note mentions, who want it and may see the ticket."""
        outbox_ids = []
        for user in self.mentioned(conn, note):
            if user["id"] == author["id"] or not user["notify_mentioned"]:
                continue
            if not self._may_see(user, ticket):
                continue
            notice = self.composer.mention_notice(ticket, user, author, note)
            outbox_ids.append(queue_email(conn, notice, ticket_id=ticket["id"], now=now))
        return outbox_ids

    @staticmethod
    def mentioned(conn: psycopg.Connection, text: str) -> list[Row]:
        """The active staff a text mentions, each once: by email, or by a login name that
        only one of them has."""
        names = mentioned_names(text)
        if not names:
            return []
        rows = _active_staff_named(conn, names=names)
        by_login: dict[str, list[Row]] = {}
        for row in rows:
            by_login.setdefault(row["email"].lower().split("@", 1)[0], []).append(row)
        people: dict[int, Row] = {}
        for name in names:
            if "@" in name:
                matches = [r for r in rows if r["email"].lower() == name]
            else:
                matches = by_login.get(name, [])
                matches = matches if len(matches) == 1 else []
            for row in matches:
                people.setdefault(row["id"], row)
        return list(people.values())

    @staticmethod
    def _people(conn: psycopg.Connection, ids: Iterable[int]) -> Sequence[Row]:
        """The accounts of `ids`, each once."""
        unique = sorted(set(ids))
        return _users_by_ids(conn, ids=unique) if unique else []
