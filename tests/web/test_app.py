"""create_app: every route's resource is built once."""

from __future__ import annotations

import pytest

from supportdesk.core.redis_client import make_redis
from supportdesk.web.app import create_app
from supportdesk.web.guards import ANYONE
from supportdesk.web.routes import Operation, Route


def test_a_resource_named_twice_stops_the_app_from_starting(settings, db):
    """A second builder naming a resource would silently take over the first one's routes
    (it happened once: the Mailboxes page briefly replaced the dev mailbox's)."""
    clash = Route("/test-clash", "ticket_page", {"GET": Operation(ANYONE, "a clash")})
    with pytest.raises(RuntimeError, match="resources built twice: ticket_page"):
        create_app(
            settings, db=db, redis_client=make_redis(settings), extra_routes=[(clash, object())]
        )
