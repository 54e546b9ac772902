"""Whether the services this process needs answer right now."""

from __future__ import annotations

import logging

import redis

from supportdesk.db import Database, queries

log = logging.getLogger("supportdesk.health")
_ping = queries.ping


class HealthChecker:
    def __init__(self, db: Database, redis_client: redis.Redis, timeout: float = 2.0):
        self.db = db
        self.redis = redis_client
        self.timeout = timeout

    def check(self) -> dict[str, str]:
        return {"postgres": self._postgres(), "redis": self._redis()}

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
