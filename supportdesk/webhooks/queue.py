"""The outgoing webhooks' reliable queue in Redis: the design of core/reliable_queue.py
(the email outbox's, DESIGN.md section 6) under the keys `sd:webhook:*`, holding
`webhook_deliveries` ids."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from supportdesk.core.reliable_queue import QueueKeys

log = logging.getLogger("supportdesk.webhooks")

WEBHOOKS = QueueKeys("sd:webhook")
# The channel of the NOTIFY that a committed delivery sends (sql/webhooks.sql).
CHANNEL = "sd_webhook_deliveries"


def push_after_commit(redis_client: redis.Redis, delivery_ids: Iterable[int]) -> bool:
    """Push committed delivery ids onto the queue; False (logged, not raised) when Redis is
    unreachable, since the rows are safe and the sweeper will pick them up."""
    ids = [str(i) for i in delivery_ids]
    if not ids:
        return True
    try:
        redis_client.lpush(WEBHOOKS.queue, *ids)
    except redis.RedisError as ex:
        log.warning("could not enqueue webhook deliveries %s (the sweeper will): %r", ids, ex)
        return False
    return True
