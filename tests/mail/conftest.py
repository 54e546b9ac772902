"""The inbound SMTP listener of the tests: in this process, on the test database and Redis."""

from __future__ import annotations

import pytest

from supportdesk.core.redis_client import make_redis
from supportdesk.dev.embedded import free_port
from supportdesk.mail.inbound.sender_auth.check import SenderCheck
from supportdesk.mail.inbound.sender_auth.resolver import Resolver
from supportdesk.mail.inbound.smtp import serve
from supportdesk.web.services import build_services
from tests.dnsrecords import RecordsResolver


@pytest.fixture
def start_listener(db, redis_client):
    """start_listener(settings) -> the port of a listener built as `supportdesk
    smtp-inbound` builds it; stopped when the test ends."""
    controllers = []

    def start(settings, resolver: Resolver | None = None) -> int:
        """`resolver`: the DNS the sender check asks (by default one that knows nothing:
        every message is `none`)."""
        services = build_services(settings, db, make_redis(settings))
        port = free_port()
        controllers.append(
            serve(
                services.inbound,
                services.inbound_parser,
                services.smtp_clients,
                settings.mail_domain,
                "127.0.0.1",
                port,
                sender_check=SenderCheck(
                    resolver or RecordsResolver(), relays=settings.inbound_smtp_relays
                ),
            )
        )
        return port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def listener(settings, start_listener) -> int:
    return start_listener(settings)
