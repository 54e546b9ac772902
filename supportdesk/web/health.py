"""Whether the services this process needs answer right now, and how email is doing."""

from __future__ import annotations

import logging
from typing import Any

import redis

from supportdesk.core.db import Database, queries
from supportdesk.mail.outbound.deliveries import DeliveryService

log = logging.getLogger("supportdesk.web.health")
_ping = queries.ping
_mailboxes_to_reauthorize = queries.mailboxes_to_reauthorize


class HealthChecker:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        deliveries: DeliveryService,
        timeout: float = 2.0,
    ):
        self.db = db
        self.redis = redis_client
        self.deliveries = deliveries
        self.timeout = timeout

    def check(self) -> dict[str, str]:
        """PostgreSQL and Redis: the two things every request may need."""
        return {"postgres": self._postgres(), "redis": self._redis()}

    def email(self) -> dict[str, Any] | None:
        """The outbox and its workers (None when that cannot be read right now): a monitor
        alerts on `worker` and on `oldest_pending_seconds` growing, long before a customer
        notices a missing reply."""
        try:
            return self.deliveries.health()
        except Exception as ex:  # the checks above already say which service is down
            log.warning("health: email status not available: %r", ex)
            return None

    def mailboxes(self) -> dict[str, Any] | None:
        """The mailboxes an ADMIN must connect again (REAUTHORIZE), named here for a monitor
        to alert on. Degraded, not down: the desk and its other mailboxes work, and a load
        balancer must not take the web away over one mailbox's consent (None when that
        cannot be read right now)."""
        try:
            with self.db.transaction(timeout=self.timeout) as conn:
                rows = _mailboxes_to_reauthorize(conn)
        except Exception as ex:  # the checks above already say which service is down
            log.warning("health: mailbox status not available: %r", ex)
            return None
        return {
            "reauthorize": [
                {"id": r["id"], "address": r["address"], "since": r["updated_at"].isoformat()}
                for r in rows
            ]
        }

    def _postgres(self) -> str:
        try:
            with self.db.transaction(timeout=self.timeout) as conn:
                _ping(conn)
        except Exception as ex:  # any failure means "not healthy"; the log says which
            log.warning("health: PostgreSQL does not answer: %r", ex)
            return "unavailable"
        return "ok"

    def _redis(self) -> str:
        try:
            self.redis.ping()
        except Exception as ex:
            log.warning("health: Redis does not answer: %r", ex)
            return "unavailable"
        return "ok"
