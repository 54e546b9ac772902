"""The email queue in Redis: ids of `email_outbox` rows waiting to be sent.

Producers push ids after the transaction that wrote the rows has committed. The rows are the
truth: an id that never reaches Redis (Redis down, flushed) is found again by the sweeper,
which re-enqueues PENDING rows that no queue holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

log = logging.getLogger("supportdesk.queue")

EMAIL_QUEUE = "sd:email:queue"


def enqueue_emails(redis_client: redis.Redis, outbox_ids: Iterable[int]) -> bool:
    """Push outbox ids onto the queue; False (logged, not raised) when Redis is unreachable,
    since the caller's data is already committed and the sweeper will pick the rows up."""
    ids = [str(i) for i in outbox_ids]
    if not ids:
        return True
    try:
        redis_client.lpush(EMAIL_QUEUE, *ids)
    except redis.RedisError as ex:
        log.warning("could not enqueue outbox ids %s (the sweeper will retry): %r", ids, ex)
        return False
    return True
