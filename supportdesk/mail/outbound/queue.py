"""The reliable queue in Redis, as one worker sees it (DESIGN.md section 6).

    sd:email:queue                 list: outbox ids waiting (producers LPUSH, workers take right)
    sd:email:processing:<worker>   list: the ids one worker has taken and not yet finished
    sd:email:retry                 sorted set: ids waiting for a retry, scored by due time
    sd:email:workers               set: the workers whose processing lists exist
    sd:email:heartbeat:<worker>    string with a TTL of three beats: "this worker is alive"

An id moves between these structures only by atomic Redis operations (BLMOVE, MULTI, Lua),
so at every moment an undelivered id sits in exactly one place and two workers never take
the same one from here. The database row, not Redis, decides whether an id still needs
sending: a duplicate id (say, re-enqueued by the sweeper) is dropped when its row is no
longer PENDING or FAILED.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

# Every key of the queue: producers (outbox.push_after_commit) LPUSH onto EMAIL_QUEUE.
EMAIL_QUEUE = "sd:email:queue"
RETRY_SET = "sd:email:retry"
WORKERS = "sd:email:workers"
SWEEP_LOCK = "sd:email:sweep-lock"


def processing_key(worker_id: str) -> str:
    return f"sd:email:processing:{worker_id}"


def heartbeat_key(worker_id: str) -> str:
    return f"sd:email:heartbeat:{worker_id}"


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


class WorkerQueue:
    """The queue operations of one worker (`worker_id`), and the sweeper's views of all."""

    def __init__(self, redis_client: redis.Redis, worker_id: str, heartbeat_ttl: float):
        self.redis = redis_client
        self.worker_id = worker_id
        self.processing = processing_key(worker_id)
        self.heartbeat = heartbeat_key(worker_id)
        self.heartbeat_ttl_ms = max(1, int(heartbeat_ttl * 1000))
        self._promote_due = redis_client.register_script(_PROMOTE_DUE)
        self._held_ids = redis_client.register_script(_HELD_IDS)
        self._release_dead = redis_client.register_script(_RELEASE_DEAD)

    # --- this worker -----------------------------------------------------------------------

    def beat(self) -> None:
        """Say this worker is alive (and registered: a Redis that lost its data learns it
        again within one beat)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(WORKERS, self.worker_id)
            pipe.set(self.heartbeat, "1", px=self.heartbeat_ttl_ms)
            pipe.execute()

    def take(self, timeout: float, limit: int = 1) -> list[int]:
        """Up to `limit` ids, moved into this worker's processing list: waits up to
        `timeout` for the first, then takes what else is already waiting."""
        first = self.redis.blmove(EMAIL_QUEUE, self.processing, timeout, "RIGHT", "LEFT")
        if first is None:
            return []
        taken = [int(first)]
        if limit > 1:
            with self.redis.pipeline(transaction=False) as pipe:
                for _ in range(limit - 1):
                    pipe.lmove(EMAIL_QUEUE, self.processing, "RIGHT", "LEFT")
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
            pipe.zadd(RETRY_SET, {str(outbox_id): due})
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
                pipe.rpush(EMAIL_QUEUE, *reversed(ids))
            pipe.execute()

    def leave(self) -> None:
        """A clean stop: anything still held goes back to the queue, then the registration
        and the heartbeat go."""
        while self.redis.rpoplpush(self.processing, EMAIL_QUEUE) is not None:
            pass
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(WORKERS, self.worker_id)
            pipe.delete(self.heartbeat)
            pipe.execute()

    def promote_due(self, now: float, limit: int = 500) -> int:
        """Retries due by Unix time `now` back onto the queue; how many moved."""
        return int(self._promote_due(keys=[RETRY_SET, EMAIL_QUEUE], args=[now, limit]))

    # --- every worker (the sweeper) ----------------------------------------------------------

    def try_sweep_lock(self, seconds: float) -> bool:
        """One sweeper at a time across all workers: True if this one may sweep now."""
        return bool(
            self.redis.set(SWEEP_LOCK, self.worker_id, nx=True, px=max(1, int(seconds * 1000)))
        )

    def held_ids(self) -> set[int]:
        """Every id in the queue, the retry set and any processing list, at one instant."""
        prefix = processing_key("")
        return set(_ids(self._held_ids(keys=[EMAIL_QUEUE, RETRY_SET, WORKERS], args=[prefix])))

    def silent_workers(self) -> list[str]:
        """Registered workers without a live heartbeat."""
        return silent_workers(self.redis)

    def live_workers(self) -> list[str]:
        """Registered workers whose heartbeat is alive."""
        registered = {w.decode() for w in self.redis.smembers(WORKERS)}
        return sorted(registered - set(silent_workers(self.redis)))

    def leftovers(self) -> list[int]:
        """Ids in this worker's own list that it is not working on: a step that failed
        half-way (Redis or the database went away) or a reply of Redis that was lost."""
        return _ids(self.redis.lrange(self.processing, 0, -1))

    def in_flight(self, worker_id: str) -> list[int]:
        return _ids(self.redis.lrange(processing_key(worker_id), 0, -1))

    def release_dead(self, worker_id: str) -> list[int] | None:
        """Move a silent worker's ids back onto the queue and forget the worker; None (and
        nothing moved) if its heartbeat came back meanwhile."""
        moved = self._release_dead(
            keys=[heartbeat_key(worker_id), processing_key(worker_id), EMAIL_QUEUE, WORKERS],
            args=[worker_id],
        )
        return None if moved is None else _ids(moved)

    def requeue(self, outbox_ids: Iterable[int]) -> None:
        ids = [str(i) for i in outbox_ids]
        if ids:
            self.redis.lpush(EMAIL_QUEUE, *ids)

    def schedule(self, due_by_id: dict[int, float]) -> None:
        if due_by_id:
            self.redis.zadd(RETRY_SET, {str(i): due for i, due in due_by_id.items()})


def silent_workers(redis_client: redis.Redis) -> list[str]:
    """Registered workers without a live heartbeat."""
    workers = sorted(w.decode() for w in redis_client.smembers(WORKERS))
    with redis_client.pipeline(transaction=False) as pipe:
        for worker in workers:
            pipe.exists(heartbeat_key(worker))
        alive = pipe.execute()
    return [w for w, is_alive in zip(workers, alive, strict=True) if not is_alive]


def queue_stats(redis_client: redis.Redis) -> dict[str, int]:
    """What /healthz reports: ids waiting, ids waiting for a retry, workers alive."""
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.llen(EMAIL_QUEUE)
        pipe.zcard(RETRY_SET)
        pipe.scard(WORKERS)
        queued, retrying, registered = pipe.execute()
    return {
        "queued": int(queued),
        "retrying": int(retrying),
        "workers_alive": int(registered) - len(silent_workers(redis_client)),
    }
