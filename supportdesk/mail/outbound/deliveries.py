"""The Outbox, as an ADMIN operates it: every delivery with its attempts and last error, a
retry for those that gave up, and the numbers /healthz reports.

Nobody should need SQL to resend an email: a DEAD delivery goes back to PENDING with a
fresh set of attempts and onto the queue, exactly as a new one would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Conflict, NotFound
from supportdesk.core.fields import CHOICE, Field, Query
from supportdesk.core.paging import PAGE, PER_PAGE, not_too_deep
from supportdesk.core.vocabulary import OUTBOX_STATUSES
from supportdesk.mail.outbound.outbox import push_after_commit
from supportdesk.mail.outbound.queue import queue_stats

# Counts per status are exact up to this many; the page says "10,000+" past it.
COUNT_CAP = 10_000

_list_outbox = queries.list_outbox
_count_outbox_by_status = queries.count_outbox_by_status
_retry_dead_outbox = queries.retry_dead_outbox
_outbox_delivery = queries.outbox_delivery
_outbox_health = queries.outbox_health

Row = Mapping[str, Any]


def public_delivery(row: Row) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": row["id"],
        "ticket": row["pid"],
        "kind": row["kind"],
        "to": row["to_address"],
        "subject": row["subject"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "next_attempt_at": when(row["next_attempt_at"]),
        "last_attempt_at": when(row["last_attempt_at"]),
        "sent_at": when(row["sent_at"]),
        "message_id": row["message_id"],
        "created_at": when(row["created_at"]),
    }


@dataclass(frozen=True)
class DeliveryPage:
    items: list[Row]
    counts: dict[str, int]  # per status, capped at COUNT_CAP + 1
    filters: OutboxFilters

    @property
    def total(self) -> int:
        if self.filters.status:
            return min(self.counts[self.filters.status], COUNT_CAP)
        return min(sum(self.counts.values()), COUNT_CAP)

    @property
    def total_capped(self) -> bool:
        counted = (
            self.counts[self.filters.status] if self.filters.status else sum(self.counts.values())
        )
        return counted > COUNT_CAP


class DeliveryService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.redis = redis_client
        self.clock = clock

    def list(self, filters: OutboxFilters) -> DeliveryPage:
        with self.db.transaction() as conn:
            items = _list_outbox(
                conn,
                status=filters.status,
                limit=filters.per_page,
                offset=(filters.page - 1) * filters.per_page,
            )
            counts = {r["status"]: r["count"] for r in _count_outbox_by_status(conn, cap=COUNT_CAP)}
        return DeliveryPage(items, counts, filters)

    def retry(self, outbox_id: int) -> Row:
        """A DEAD delivery back to PENDING and onto the queue; 409 for any other status."""
        with self.db.transaction() as conn:
            retried = _retry_dead_outbox(conn, id=outbox_id, now=self.clock())
            delivery = _outbox_delivery(conn, id=outbox_id)
        if delivery is None:
            raise NotFound("No such delivery.")
        if retried is None:
            raise Conflict(
                f"Only a failed delivery can be retried; this one is {delivery['status']}.",
                details={"status": delivery["status"]},
            )
        self.db.after_commit(push_after_commit, self.redis, [outbox_id])
        return delivery

    def health(self) -> dict[str, Any]:
        """What /healthz says about email: the age of the oldest PENDING email, how many are
        undelivered or dead, the queue, and whether any worker is alive."""
        with self.db.transaction() as conn:
            row = _outbox_health(conn)
        oldest = row["oldest_pending"]
        stats = queue_stats(self.redis)
        return {
            "oldest_pending_seconds": None
            if oldest is None
            else round(max(0.0, (self.clock() - oldest).total_seconds()), 1),
            "undelivered": row["undelivered"],
            "dead": row["dead"],
            **stats,
            "worker": "ok" if stats["workers_alive"] else "none alive",
        }


# --- the Outbox's filters ------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxFilters:
    status: str | None = None
    page: int = 1
    per_page: int = 25


OUTBOX_FILTERS = Query(
    (Field("status", CHOICE, choices=OUTBOX_STATUSES, description="one status"), PAGE, PER_PAGE),
    across=not_too_deep,
)


def parse_outbox_filters(params: Mapping[str, Any]) -> OutboxFilters:
    return OutboxFilters(**OUTBOX_FILTERS.parse(params))
