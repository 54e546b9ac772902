"""The email outbox's reliable queue in Redis (DESIGN.md section 6): the shared design of
core/reliable_queue.py under the keys `sd:email:*`.

    sd:email:queue                 list: outbox ids waiting (producers LPUSH, workers take right)
    sd:email:processing:<worker>   list: the ids one worker has taken and not yet finished
    sd:email:retry                 sorted set: ids waiting for a retry, scored by due time
    sd:email:workers               set: the workers whose processing lists exist
    sd:email:heartbeat:<worker>    string with a TTL of three beats: "this worker is alive"
"""

from __future__ import annotations

import redis

from supportdesk.core import reliable_queue
from supportdesk.core.reliable_queue import QueueKeys, ReliableQueue

EMAIL = QueueKeys("sd:email")
# Every key of the queue: producers (outbox.push_after_commit) LPUSH onto EMAIL_QUEUE.
EMAIL_QUEUE = EMAIL.queue
RETRY_SET = EMAIL.retry
WORKERS = EMAIL.workers
SWEEP_LOCK = EMAIL.sweep_lock
processing_key = EMAIL.processing
heartbeat_key = EMAIL.heartbeat


class WorkerQueue(ReliableQueue):
    """The email queue's operations of one worker (`worker_id`), and the sweeper's views."""

    def __init__(self, redis_client: redis.Redis, worker_id: str, heartbeat_ttl: float):
        super().__init__(redis_client, EMAIL, worker_id, heartbeat_ttl)


def silent_workers(redis_client: redis.Redis) -> list[str]:
    """Registered email workers without a live heartbeat."""
    return reliable_queue.silent_workers(redis_client, EMAIL)


def queue_stats(redis_client: redis.Redis) -> dict[str, int]:
    """What /healthz reports: ids waiting, ids waiting for a retry, workers alive."""
    return reliable_queue.queue_stats(redis_client, EMAIL)
