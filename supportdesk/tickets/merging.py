"""Merging a duplicate ticket into another, and splitting a message off into a ticket of its
own (DESIGN.md section 12).

Merge (`source` into `target`): the source's messages and files move to the target; its
participants, and its requester when that is not the target's, become participants of the
target (so that everyone who could write to the source can write to where its mail now
lands; not capped by MAX_PARTICIPANTS: nobody is cut off from their conversation by a merge,
and staff may remove people afterwards); staff following the source follow the target. The
source becomes CLOSED and points at the target (`merged_into_id`), with a MERGED_INTO event;
the target gets MERGED_FROM. Its outbox rows and events stay where they were written: history
is append-only. Both tickets are locked in id order, so that two merges of one pair, either
way round, wait for each other rather than deadlock, and every check is made again on the
locked rows: the second of A->B and B->A finds its target merged, and is refused.

Refused, as a 422 on `into`: a ticket into itself; a ticket that is already merged; into a
ticket that is itself merged (naming where its chain ends, and saying when that is a circle
back to the source). With those three, no chain can ever close into a cycle. The caller must
see both tickets (tickets/access.py): either one out of reach is 404.

Afterwards mail threaded to the source (its Message-IDs, its `[#PID]`, its tokens) lands at
the end of its chain: `final_ticket`, which inbound threading and the customer's view call.
The sender must be the requester or a participant of that final ticket: the ticket the text
lands in is the one whose people decide, and the merge made the source's people its people.

Split: one CUSTOMER message (not staff's, not a note) moves, with its files and its
Message-ID (so the email's thread follows it), to a new ticket: OPEN, its requester the
message's author, the source's subject, priority, mailbox and assignee (whoever could see the
source can see the new ticket; an AGENT keeps what it splits), and no acknowledgement (the
customer asked nothing new; staff answer when they do). A ticket's only message is not split
off: nothing would be left. SPLIT_TO on the source, CREATED and SPLIT_FROM on the new one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound, ValidationFailed
from supportdesk.core.fields import Body, Field, Kind
from supportdesk.core.text import Problems
from supportdesk.core.vocabulary import PID_PATTERN, is_pid
from supportdesk.tickets.access import may_see, visible_ticket
from supportdesk.tickets.pids import take_next_pid
from supportdesk.tickets.timeline import record_event

_lock_tickets_in_order = queries.lock_tickets_in_order
_merge_target_of = queries.merge_target_of
_move_messages = queries.move_messages
_move_attachments = queries.move_attachments
_copy_participants_to_target = queries.copy_participants_to_target
_drop_participants = queries.drop_participants
_copy_followers = queries.copy_followers
_mark_merged = queries.mark_merged
_touch_ticket = queries.touch_ticket
_message_of_ticket = queries.message_of_ticket
_move_message = queries.move_message
_participant_name = queries.participant_name
_reserve_ticket_id = queries.reserve_ticket_id
_insert_ticket = queries.insert_ticket
_lock_ticket = queries.lock_ticket
_ticket_by_pid = queries.ticket_by_pid
_is_participant = queries.is_participant

Row = Mapping[str, Any]

# How far a chain of merges is followed. Merges never close a cycle; this bounds a chain
# that something else corrupted, rather than loop on it.
MAX_CHAIN = 100


def _ticket_number(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A PID as people write it: `202612-00042` or `#202612-00042`, spaces around."""
    text = value.strip().removeprefix("#").strip() if isinstance(value, str) else ""
    if not is_pid(text):
        problems[field.name] = field.message
        return None
    return text


# A ticket number, as the pattern says (the check also lets spaces around it by).
TICKET_NUMBER = Kind({"type": "string", "pattern": f"^#?{PID_PATTERN}$"}, _ticket_number)

MERGE = Body(
    "Merge",
    (
        Field(
            "into",
            TICKET_NUMBER,
            "Give a ticket number such as 202612-00042.",
            required=True,
            description="the PID of the ticket that receives this one (a leading # is allowed)",
        ),
    ),
)


def parse_merge(data: Mapping[str, Any]) -> str:
    """The target's PID, from `{into}`."""
    return str(MERGE.parse(data)["into"])


def final_ticket(conn: psycopg.Connection, ticket: Row) -> Row:
    """Where a ticket's mail lands: the ticket itself, or the end of its chain of merges."""
    if ticket["merged_into_id"] is None:
        return ticket
    end: Row | None = _merge_target_of(conn, id=ticket["id"], depth=MAX_CHAIN)
    return end or ticket


class TargetNotFound(NotFound):
    """The ticket to merge into does not exist, or the caller may not see it."""


@dataclass(frozen=True)
class Merged:
    source: Row
    target: Row


def _brief(ticket: Row) -> dict[str, Any]:
    return {"pid": ticket["pid"], "subject": ticket["subject"]}


class MergeService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.clock = clock

    def merge(self, actor: Row, pid: str, into: str) -> Merged:
        """Merge ticket `pid` into ticket `into`, both within the actor's reach."""
        with self.db.transaction() as conn:
            seen = visible_ticket(conn, actor, pid)
            try:
                seen_target = visible_ticket(conn, actor, into)
            except NotFound:
                raise TargetNotFound(f"No ticket #{into} that you can see.") from None
            if seen["id"] == seen_target["id"]:
                raise ValidationFailed({"into": "A ticket cannot be merged into itself."})
            rows = _lock_tickets_in_order(conn, ids=sorted([seen["id"], seen_target["id"]]))
            locked = {row["id"]: row for row in rows}
            source, target = locked[seen["id"]], locked[seen_target["id"]]
            if not may_see(actor, source):  # reassigned since it was read: as if never seen
                raise NotFound("No such ticket.")
            if not may_see(actor, target):
                raise TargetNotFound(f"No ticket #{into} that you can see.")
            self._refuse_chains(conn, source, target)
            now = self.clock()
            moved = self._move(conn, source, target, actor, now)
            _mark_merged(conn, id=source["id"], target_id=target["id"], now=now)
            _touch_ticket(conn, id=target["id"], now=now)
            record_event(
                conn,
                source["id"],
                "MERGED_INTO",
                actor=actor,
                now=now,
                data={"into": _brief(target), "status_from": source["status"]} | moved,
            )
            record_event(
                conn, target["id"], "MERGED_FROM", actor=actor, now=now,
                data={"from": _brief(source)} | moved,
            )  # fmt: skip
            return Merged(visible_ticket(conn, actor, pid), visible_ticket(conn, actor, into))

    @staticmethod
    def _refuse_chains(conn: psycopg.Connection, source: Row, target: Row) -> None:
        """A merged ticket is merged no further, and nothing merges into one (which also
        keeps every chain free of cycles)."""
        if source["merged_into_id"] is not None:
            end = final_ticket(conn, source)
            raise ValidationFailed(
                {"into": f"#{source['pid']} is already merged into #{end['pid']}."}
            )
        if target["merged_into_id"] is not None:
            end = final_ticket(conn, target)
            if end["id"] == source["id"]:
                message = (
                    f"#{target['pid']} was merged into #{source['pid']}: merging "
                    f"#{source['pid']} into it would make a circle."
                )
            else:
                message = (
                    f"#{target['pid']} is itself merged into #{end['pid']}: merge into that one."
                )
            raise ValidationFailed({"into": message})

    @staticmethod
    def _move(
        conn: psycopg.Connection, source: Row, target: Row, actor: Row, now: datetime
    ) -> dict[str, Any]:
        """The source's messages, files, people and followers, onto the target."""
        messages = _move_messages(conn, source_id=source["id"], target_id=target["id"])
        files = _move_attachments(conn, source_id=source["id"], target_id=target["id"])
        other_requester = source["requester_email"].lower() != target["requester_email"].lower()
        added = _copy_participants_to_target(
            conn,
            source_id=source["id"],
            target_id=target["id"],
            target_requester=target["requester_email"],
            requester_email=source["requester_email"] if other_requester else None,
            requester_name=source["requester_name"],
            added_by=actor["id"],
            now=now,
        )
        _drop_participants(conn, ticket_id=source["id"])
        _copy_followers(conn, source_id=source["id"], target_id=target["id"], now=now)
        return {
            "messages": int(messages),
            "files": int(files),
            "participants_added": [row["email"] for row in added],
        }

    def customer_view_moved_to(self, pid: str) -> str | None:
        """The PID whose customer view replaces the view of merged ticket `pid`: the end of
        its chain, when the source's requester is that ticket's requester or a participant
        there (as the merge made them); None for a ticket not merged, or when staff have
        since taken them off the target (the source's own, now empty, view is shown)."""
        with self.db.transaction() as conn:
            source = _ticket_by_pid(conn, pid=pid)
            if source is None or source["merged_into_id"] is None:
                return None
            end = final_ticket(conn, source)
            email = source["requester_email"].lower()
            if email == end["requester_email"].lower() or _is_participant(
                conn, ticket_id=end["id"], email=email
            ):
                return str(end["pid"])
            return None

    def split(self, actor: Row, pid: str, message_id: int) -> Merged:
        """Open a new ticket from one customer message of ticket `pid`: (source, new)."""
        with self.db.transaction() as conn:
            seen = visible_ticket(conn, actor, pid)
            source = _lock_ticket(conn, id=seen["id"])
            if not may_see(actor, source):
                raise NotFound("No such ticket.")
            message = _message_of_ticket(conn, message_id=message_id, ticket_id=source["id"])
            if message is None:
                raise NotFound("No such message in this ticket.")
            if message["author"] != "CUSTOMER":
                raise ValidationFailed(
                    {"message": "Only a customer's message can open a ticket of its own."}
                )
            if message["in_thread"] <= 1:
                raise ValidationFailed(
                    {"message": "This is the ticket's only message: nothing would be left."}
                )
            now = self.clock()
            new_id = int(_reserve_ticket_id(conn))
            # Children first, the ticket row and its PID last (the foreign keys are checked
            # at commit; the PID counter's lock is held from the PID to commit).
            _move_message(conn, message_id=message_id, target_id=new_id)
            requester = self._author(conn, source, message)
            new = _insert_ticket(
                conn,
                id=new_id,
                pid=take_next_pid(conn, now),
                subject=source["subject"],
                status="OPEN",
                priority=source["priority"],
                requester_email=requester["email"],
                requester_name=requester["name"],
                channel=message["channel"],
                assigned_to=source["assigned_to"],
                follows_up_id=None,
                mailbox_id=source["mailbox_id"],
                created_at=now,
            )
            # After the ticket row: its webhooks (record_event) describe the new ticket.
            record_event(
                conn,
                new_id,
                "CREATED",
                actor=actor,
                now=now,
                data={
                    "channel": message["channel"],
                    "requester": requester,
                    "priority": source["priority"],
                    "split_from": source["pid"],
                },
            )
            moved = {"message_id": message_id}
            record_event(
                conn, new_id, "SPLIT_FROM", actor=actor, now=now,
                data={"from": _brief(source)} | moved,
            )  # fmt: skip
            record_event(
                conn, source["id"], "SPLIT_TO", actor=actor, now=now,
                data={"to": _brief(new)} | moved,
            )  # fmt: skip
            _touch_ticket(conn, id=source["id"], now=now)
            return Merged(visible_ticket(conn, actor, pid), visible_ticket(conn, actor, new["pid"]))

    @staticmethod
    def _author(conn: psycopg.Connection, source: Row, message: Row) -> dict[str, str]:
        """The new ticket's requester: the message's author, named as the source knew them."""
        email = message["author_email"] or source["requester_email"]
        if email.lower() == source["requester_email"].lower():
            return {"email": source["requester_email"], "name": source["requester_name"]}
        name = _participant_name(conn, ticket_id=source["id"], email=email)
        return {"email": email, "name": name or email.split("@", 1)[0] or email}
