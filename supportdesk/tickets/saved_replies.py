"""Saved replies (DESIGN.md section 12): text a staff member inserts into the reply box.

A saved reply is shared (`owner_id` NULL: every staff member uses it; ADMIN and SUB_ADMIN
create, change and delete it) or personal (its owner's alone). Someone else's personal
reply is "not found" (404), never "forbidden", as tickets are; an AGENT that tries to make
or change a shared one is refused (403). Its body is a template of the placeholders'
language (tickets/reply_templates.py), checked when it is saved; `render` fills it in for a
ticket the caller may see. It may hold files (tickets/saved_reply_files.py), listed with it
and offered with its text when it is inserted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Forbidden, NotFound
from supportdesk.core.fields import FLAG, LINE, TEXT, Body, Field, Kind
from supportdesk.core.text import Problems
from supportdesk.core.vocabulary import MAX_BODY, PID_JSON_PATTERN, is_manager, is_pid
from supportdesk.tickets.access import visible_ticket
from supportdesk.tickets.reply_templates import check_template, first_name, render_template

if TYPE_CHECKING:
    from supportdesk.tickets.saved_reply_files import SavedReplyFiles

_saved_replies_for = queries.saved_replies_for
_saved_reply_for = queries.saved_reply_for
_lock_saved_reply_for = queries.lock_saved_reply_for
_insert_saved_reply = queries.insert_saved_reply
_update_saved_reply = queries.update_saved_reply
_delete_saved_reply = queries.delete_saved_reply

Row = Mapping[str, Any]
MAX_TITLE = 200


def _pid(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or not is_pid(value.strip()):
        problems[field.name] = field.message
        return None
    return value.strip()


PID = Kind({"type": "string", "pattern": PID_JSON_PATTERN}, _pid)

_TITLE = Field("title", LINE, "Enter a title of at most 200 characters.", max_length=MAX_TITLE)
_BODY = Field(
    "body",
    TEXT,
    f"Enter the reply's text (at most {MAX_BODY:,} characters).",
    max_length=MAX_BODY,
    description="a template: {{ customer.first_name }} and the other placeholders of the "
    "README, {% if %}; checked when saved (a 422 naming the line)",
)
_SHARED = Field(
    "shared",
    FLAG,
    "Say true or false.",
    description="true: every staff member's (only ADMIN and SUB_ADMIN make or change "
    "those); false (default): the caller's own",
)
NEW_SAVED_REPLY = Body(
    "NewSavedReply",
    (
        replace(_TITLE, required=True),
        replace(_BODY, required=True),
        _SHARED,
    ),
)
SAVED_REPLY_CHANGE = Body(
    "SavedReplyChange",
    (_TITLE, _BODY, _SHARED),
    at_least_one="Change the title, the body or whether it is shared.",
)
RENDER_SAVED_REPLY = Body(
    "RenderSavedReply",
    (Field("pid", PID, "Give the ticket's number.", required=True),),
)


def public_saved_reply_file(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "filename": row["filename"],
        "content_type": row["content_type"],
        "size": row["size_bytes"],
        "url": f"/api/saved-replies/{row['saved_reply_id']}/files/{row['id']}",
    }


def public_saved_reply(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "body": row["body"],
        "shared": row["owner_id"] is None,
        "owner_id": row["owner_id"],
        "created_by": {"id": row["created_by"], "name": row.get("created_by_name")},
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "files": [public_saved_reply_file(f) for f in row.get("files", ())],
    }


@dataclass(frozen=True)
class Rendered:
    """A saved reply filled in for a ticket: its text, and its files to offer beside it."""

    text: str
    files: list[Row]


def _may_manage(actor: Row, shared: bool) -> None:
    if shared and not is_manager(actor):
        raise Forbidden("Only ADMIN and SUB_ADMIN manage shared saved replies.")


def usable_reply(conn: psycopg.Connection, viewer: Row, reply_id: int) -> Row:
    """A saved reply the viewer may use (404 otherwise)."""
    row = _saved_reply_for(conn, id=reply_id, staff_id=viewer["id"])
    if row is None:
        raise NotFound("No such saved reply.")
    return row


def lock_changeable(conn: psycopg.Connection, actor: Row, reply_id: int) -> Row:
    """A saved reply the actor may change (or delete, or add files to), locked: 404 for one
    it may not use, 403 for a shared one to an AGENT."""
    row = _lock_saved_reply_for(conn, id=reply_id, staff_id=actor["id"])
    if row is None:
        raise NotFound("No such saved reply.")
    _may_manage(actor, row["owner_id"] is None)
    return row


def render_context(ticket: Row, agent: Row) -> dict[str, dict[str, str]]:
    """What the placeholders read: plain strings copied out of the rows."""
    return {
        "customer": {
            "name": ticket["requester_name"],
            "first_name": first_name(ticket["requester_name"]),
            "email": ticket["requester_email"],
        },
        "ticket": {
            "pid": ticket["pid"],
            "subject": ticket["subject"],
            "status": ticket["status"],
            "priority": ticket["priority"],
        },
        "agent": {
            "name": agent["name"],
            "first_name": first_name(agent["name"]),
            "email": agent["email"],
        },
    }


class SavedReplies:
    def __init__(self, db: Database, clock: Callable[[], datetime], files: SavedReplyFiles):
        self.db = db
        self.clock = clock
        self.files = files

    def usable(self, viewer: Row) -> list[Row]:
        """The shared replies, then the viewer's own, by title; each with its files."""
        with self.db.transaction() as conn:
            rows = list(_saved_replies_for(conn, staff_id=viewer["id"]))
            files = self.files.of(conn, [r["id"] for r in rows])
        return [r | {"files": files.get(r["id"], [])} for r in rows]

    def get(self, viewer: Row, reply_id: int, *, to_change: bool = False) -> Row:
        """One usable saved reply (404 otherwise); `to_change`: one the viewer may also
        change (403 for a shared one to an AGENT)."""
        with self.db.transaction() as conn:
            row = self._get(conn, viewer, reply_id)
        if to_change:
            _may_manage(viewer, row["owner_id"] is None)
        return row

    def create(self, actor: Row, data: Mapping[str, Any], *, strict: bool = True) -> Row:
        values = NEW_SAVED_REPLY.parse(data, strict=strict)
        shared = bool(values["shared"])
        _may_manage(actor, shared)
        check_template(values["body"])
        with self.db.transaction() as conn:
            new_id = _insert_saved_reply(
                conn,
                title=values["title"],
                body=values["body"],
                owner_id=None if shared else actor["id"],
                created_by=actor["id"],
                now=self.clock(),
            )["id"]
            return self._get(conn, actor, new_id)

    def update(
        self, actor: Row, reply_id: int, data: Mapping[str, Any], *, strict: bool = True
    ) -> Row:
        values = SAVED_REPLY_CHANGE.parse(data, strict=strict)
        with self.db.transaction() as conn:
            row = self._lock(conn, actor, reply_id)
            was_shared = row["owner_id"] is None
            shared = was_shared if values["shared"] is None else values["shared"]
            _may_manage(actor, was_shared or shared)
            body = values["body"] if values["body"] is not None else row["body"]
            if values["body"] is not None:
                check_template(body)
            _update_saved_reply(
                conn,
                id=reply_id,
                title=values["title"] or row["title"],
                body=body,
                # Made personal: the one who made it so owns it.
                owner_id=None if shared else (row["owner_id"] or actor["id"]),
                now=self.clock(),
            )
            return self._get(conn, actor, reply_id)

    def delete(self, actor: Row, reply_id: int) -> None:
        """The saved reply and its files (their stored bytes once this commits)."""
        with self.db.transaction() as conn:
            lock_changeable(conn, actor, reply_id)
            self.files.forget_all(conn, reply_id)
            _delete_saved_reply(conn, id=reply_id)

    def render(self, viewer: Row, reply_id: int, pid: str) -> Rendered:
        """The saved reply filled in for a ticket the viewer may see (404 otherwise), with
        its files."""
        with self.db.transaction() as conn:
            ticket = visible_ticket(conn, viewer, pid)
            reply = self._get(conn, viewer, reply_id)
        text = render_template(reply["body"], render_context(ticket, viewer))
        return Rendered(text, list(reply["files"]))

    def _get(self, conn: Any, viewer: Row, reply_id: int) -> Row:
        row = usable_reply(conn, viewer, reply_id)
        return row | {"files": self.files.of(conn, [reply_id]).get(reply_id, [])}

    def _lock(self, conn: Any, viewer: Row, reply_id: int) -> Row:
        row = _lock_saved_reply_for(conn, id=reply_id, staff_id=viewer["id"])
        if row is None:
            raise NotFound("No such saved reply.")
        return row
