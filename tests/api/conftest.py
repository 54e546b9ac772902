"""Fixtures of the inbound webhook's tests: the settings with its secret, the app, and a
world of tickets that replies can name."""

from __future__ import annotations

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.tickets.inputs import Assignment, NewTicket, TicketChange
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.webhook import SECRET


@pytest.fixture
def inbound_settings(settings):
    return settings.replace(inbound_email_secret=SECRET)


@pytest.fixture
def api(inbound_settings, db, redis_client) -> webtest.TestApp:
    return webtest.TestApp(shared_app(inbound_settings, db))


@pytest.fixture
def world(inbound_settings, db, redis_client, make_staff):
    """Cleo's ticket (RESOLVED, assigned to Bo, acknowledged), her CLOSED older ticket,
    and the Message-IDs and plus-address a reply would name."""
    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    admin = make_staff("ADMIN", name="Ana Admin", email="ana@example.com")
    bo = make_staff("AGENT", name="Bo Agent", email="bo@example.com")
    new = NewTicket("Cleo Customer", "cleo@example.org", "The printer jams", "Tray 2.", "NORMAL")
    closed = services.tickets.create(new, channel="WEB")
    services.tickets.update(admin, closed["pid"], TicketChange(status="CLOSED"))
    ticket = services.tickets.create(new, channel="WEB")
    services.assignment.assign(admin, ticket["pid"], Assignment(bo["id"]))
    services.tickets.update(admin, ticket["pid"], TicketChange(status="RESOLVED"))
    with db.transaction() as conn:
        ids = dict(
            conn.execute("SELECT ticket_id || kind::text, message_id FROM email_outbox").fetchall()
        )
    return {
        "ticket": ticket,
        "closed": closed,
        "bo": bo,
        "{PID}": ticket["pid"],
        "{ACK_ID}": ids[f"{ticket['id']}ACKNOWLEDGEMENT"],
        "{NOTICE_ID}": ids[f"{ticket['id']}ASSIGNMENT"],
        "{CLOSED_PID}": closed["pid"],
        "{CLOSED_ACK_ID}": ids[f"{closed['id']}ACKNOWLEDGEMENT"],
        "{TOKEN_ADDR}": services.composer.tokens.plus_address(
            "support@example.com", ticket["pid"], "CUSTOMER"
        ),
    }
