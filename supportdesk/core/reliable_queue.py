"""A reliable work queue in Redis, as one worker sees it: the design of DESIGN.md section 6,
shared by the email outbox (mail/outbound/queue.py, keys `sd:email:*`) and the outgoing
webhooks (webhooks/queue.py, keys `sd:webhook:*`). Under a queue's prefix:

    <prefix>:queue                 list: row ids waiting (producers LPUSH, workers take right)
    <prefix>:processing:<worker>   list: the ids one worker has taken and not yet finished
    <prefix>:retry                 sorted set: ids waiting for a retry, scored by due time
    <prefix>:workers               set: the workers whose processing lists exist
    <prefix>:heartbeat:<worker>    string with a TTL of three beats: "this worker is alive"
    <prefix>:sweep-lock            one sweeper at a time

An id moves between these structures only by atomic Redis operations (BLMOVE, MULTI, Lua),
so at every moment an unfinished id sits in exactly one place and two workers never take
the same one from here. The database row, not Redis, decides whether an id still needs
doing: a duplicate id (say, re-enqueued by the sweeper) is dropped when its row is no
longer PENDING or FAILED.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class QueueKeys:
    """The Redis keys of one queue, all under `prefix` (`sd:email`)."""

    prefix: str

    @property
    def queue(self) -> str:
        return f"{self.prefix}:queue"

    @property
    def retry(self) -> str:
        return f"{self.prefix}:retry"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def sweep_lock(self) -> str:
        return f"{self.prefix}:sweep-lock"

    def processing(self, worker_id: str) -> str:
        return f"{self.prefix}:processing:{worker_id}"

    def heartbeat(self, worker_id: str) -> str:
        return f"{self.prefix}:heartbeat:{worker_id}"


# Due retries back onto the queue: each id leaves the set and joins the queue in one step,
# so two workers promoting at once cannot both enqueue it.
_PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[1], id)
    redis.call('LPUSH', KEYS[2], id)
end
return #due
"""

# Every id Redis holds right now, read in one step: the queue, the retry set and the
# processing list of every registered worker (KEYS: queue, retry set, workers set;
# ARGV[1]: the processing key prefix).
_HELD_IDS = """
local held = redis.call('LRANGE', KEYS[1], 0, -1)
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do held[#held + 1] = id end
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    for _, id in ipairs(redis.call('LRANGE', ARGV[1] .. worker, 0, -1)) do
        held[#held + 1] = id
    end
end
return held
"""

# A dead worker's processing list back onto the queue, only if its heartbeat is still
# absent (KEYS: heartbeat, processing list, queue, workers set; ARGV[1]: the worker id).
# Returns the ids moved, or false when the worker turned out to be alive.
_RELEASE_DEAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local moved = {}
while true do
    local id = redis.call('RPOPLPUSH', KEYS[2], KEYS[3])
    if not id then break end
    moved[#moved + 1] = id
end
redis.call('SREM', KEYS[4], ARGV[1])
return moved
"""


def _ids(values: Iterable[bytes | str]) -> list[int]:
    return [int(v) for v in values]


class ReliableQueue:
    """The queue operations of one worker (`worker_id`) on the queue named by `keys`, and the
    sweeper's views of all its workers."""

    def __init__(
        self, redis_client: redis.Redis, keys: QueueKeys, worker_id: str, heartbeat_ttl: float
    ):
        self.redis = redis_client
        self.keys = keys
        self.worker_id = worker_id
        self.processing = keys.processing(worker_id)
        self.heartbeat = keys.heartbeat(worker_id)
        self.heartbeat_ttl_ms = max(1, int(heartbeat_ttl * 1000))
        self._promote_due = redis_client.register_script(_PROMOTE_DUE)
        self._held_ids = redis_client.register_script(_HELD_IDS)
        self._release_dead = redis_client.register_script(_RELEASE_DEAD)

    # --- this worker -----------------------------------------------------------------------

    def beat(self) -> None:
        """Say this worker is alive (and registered: a Redis that lost its data learns it
        again within one beat)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.keys.workers, self.worker_id)
            pipe.set(self.heartbeat, "1", px=self.heartbeat_ttl_ms)
            pipe.execute()

    def take(self, timeout: float, limit: int = 1) -> list[int]:
        """Up to `limit` ids, moved into this worker's processing list: waits up to
        `timeout` for the first, then takes what else is already waiting."""
        first = self.redis.blmove(self.keys.queue, self.processing, timeout, "RIGHT", "LEFT")
        if first is None:
            return []
        taken = [int(first)]
        if limit > 1:
            with self.redis.pipeline(transaction=False) as pipe:
                for _ in range(limit - 1):
                    pipe.lmove(self.keys.queue, self.processing, "RIGHT", "LEFT")
                taken += [int(value) for value in pipe.execute() if value is not None]
        return taken

    def done(self, outbox_ids: Iterable[int]) -> None:
        """Finished with these ids (sent, dead, or not ours to send). An id left here by a
        crash is harmless: its row is no longer takeable, so it is dropped when it comes
        round again."""
        with self.redis.pipeline(transaction=False) as pipe:
            for outbox_id in outbox_ids:
                pipe.lrem(self.processing, 1, str(outbox_id))
            pipe.execute()

    def retry_later(self, outbox_id: int, due: float) -> None:
        """Into the retry set, due at Unix time `due`, and out of this worker's hands."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.retry, {str(outbox_id): due})
            pipe.lrem(self.processing, 1, str(outbox_id))
            pipe.execute()

    def give_back(self, outbox_ids: Iterable[int]) -> None:
        """Back to the front of the queue, untouched (the database was unreachable, or
        this worker is stopping)."""
        ids = [str(i) for i in outbox_ids]
        with self.redis.pipeline(transaction=True) as pipe:
            for outbox_id in ids:
                pipe.lrem(self.processing, 1, outbox_id)
            if ids:
                pipe.rpush(self.keys.queue, *reversed(ids))
            pipe.execute()

    def leave(self) -> None:
        """A clean stop: anything still held goes back to the queue, then the registration
        and the heartbeat go."""
        while self.redis.rpoplpush(self.processing, self.keys.queue) is not None:
            pass
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(self.keys.workers, self.worker_id)
            pipe.delete(self.heartbeat)
            pipe.execute()

    def promote_due(self, now: float, limit: int = 500) -> int:
        """Retries due by Unix time `now` back onto the queue; how many moved."""
        return int(self._promote_due(keys=[self.keys.retry, self.keys.queue], args=[now, limit]))

    # --- every worker (the sweeper) ----------------------------------------------------------

    def try_sweep_lock(self, seconds: float) -> bool:
        """One sweeper at a time across all workers: True if this one may sweep now."""
        return bool(
            self.redis.set(
                self.keys.sweep_lock, self.worker_id, nx=True, px=max(1, int(seconds * 1000))
            )
        )

    def held_ids(self) -> set[int]:
        """Every id in the queue, the retry set and any processing list, at one instant."""
        prefix = self.keys.processing("")
        return set(
            _ids(
                self._held_ids(
                    keys=[self.keys.queue, self.keys.retry, self.keys.workers], args=[prefix]
                )
            )
        )

    def silent_workers(self) -> list[str]:
        """Registered workers without a live heartbeat."""
        return silent_workers(self.redis, self.keys)

    def live_workers(self) -> list[str]:
        """Registered workers whose heartbeat is alive."""
        registered = {w.decode() for w in self.redis.smembers(self.keys.workers)}
        return sorted(registered - set(silent_workers(self.redis, self.keys)))

    def leftovers(self) -> list[int]:
        """Ids in this worker's own list that it is not working on: a step that failed
        half-way (Redis or the database went away) or a reply of Redis that was lost."""
        return _ids(self.redis.lrange(self.processing, 0, -1))

    def in_flight(self, worker_id: str) -> list[int]:
        return _ids(self.redis.lrange(self.keys.processing(worker_id), 0, -1))

    def release_dead(self, worker_id: str) -> list[int] | None:
        """Move a silent worker's ids back onto the queue and forget the worker; None (and
        nothing moved) if its heartbeat came back meanwhile."""
        moved = self._release_dead(
            keys=[
                self.keys.heartbeat(worker_id),
                self.keys.processing(worker_id),
                self.keys.queue,
                self.keys.workers,
            ],
            args=[worker_id],
        )
        return None if moved is None else _ids(moved)

    def requeue(self, outbox_ids: Iterable[int]) -> None:
        ids = [str(i) for i in outbox_ids]
        if ids:
            self.redis.lpush(self.keys.queue, *ids)

    def schedule(self, due_by_id: dict[int, float]) -> None:
        if due_by_id:
            self.redis.zadd(self.keys.retry, {str(i): due for i, due in due_by_id.items()})


def silent_workers(redis_client: redis.Redis, keys: QueueKeys) -> list[str]:
    """Registered workers without a live heartbeat."""
    workers = sorted(w.decode() for w in redis_client.smembers(keys.workers))
    with redis_client.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.exists(keys.heartbeat(worker))
        alive = pipe.execute()
    return [w for w, is_alive in zip(workers, alive, strict=True) if not is_alive]


def queue_stats(redis_client: redis.Redis, keys: QueueKeys) -> dict[str, int]:
    """What /healthz reports: ids waiting, ids waiting for a retry, workers alive."""
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.llen(keys.queue)
        pipe.zcard(keys.retry)
        pipe.scard(keys.workers)
        queued, retrying, registered = pipe.execute()
    return {
        "queued": int(queued),
        "retrying": int(retrying),
        "workers_alive": int(registered) - len(silent_workers(redis_client, keys)),
    }
