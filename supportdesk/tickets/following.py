"""Following a ticket (DESIGN.md section 12): a staff member who may see a ticket asks to be
told of its customer replies, as its assignee is (tickets/notifications.py).

Following is checked again each time a notice is queued, not only when it starts: a
follower who can no longer see the ticket (an AGENT whose ticket went to someone else) is
not told, and keeps the row, so that being given the ticket back tells them again.
Following and unfollowing are idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from supportdesk.core.db import Database, queries
from supportdesk.tickets.access import visible_ticket

_follow_ticket = queries.follow_ticket
_unfollow_ticket = queries.unfollow_ticket
_is_following = queries.is_following

Row = Mapping[str, Any]


class FollowService:
    def __init__(self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.clock = clock

    def set_following(self, viewer: Row, pid: str, following: bool) -> bool:
        """Follow (or stop following) a ticket the viewer may see (NotFound otherwise);
        returns whether they follow it now."""
        with self.db.transaction() as conn:
            ticket = visible_ticket(conn, viewer, pid)
            ids = {"ticket_id": ticket["id"], "user_id": viewer["id"]}
            if following:
                _follow_ticket(conn, now=self.clock(), **ids)
            else:
                _unfollow_ticket(conn, **ids)
        return following

    def is_following(self, viewer: Row, ticket: Row) -> bool:
        """Whether the viewer follows a ticket they were shown."""
        with self.db.transaction() as conn:
            return bool(_is_following(conn, ticket_id=ticket["id"], user_id=viewer["id"]))
