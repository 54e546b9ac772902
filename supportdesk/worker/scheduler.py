"""The scheduler: jobs that run every SCHEDULER_SECONDS on one host at a time (DESIGN.md
sections 9 and 12).

Any number of worker processes run a `Scheduler`; at each tick one of them takes the
scheduler's session advisory lock (core/session_locks.py, on DIRECT_DATABASE_URL, as the
mailbox fetchers do), runs every job once and lets go. The others find the lock taken and
skip that tick. A host that dies mid-run loses the lock with its connection, and another
host runs the jobs at its next tick, within SCHEDULER_SECONDS (a minute by default). The
jobs are idempotent (each re-checks what it changes under the row's lock), so a run cut
short, or an overlap, changes nothing twice.

The jobs are a registry: a name and a function returning how many things it changed.
`supportdesk scheduler --once` runs the same registry once (cli.py builds it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg

from supportdesk.core.session_locks import LockSession

log = logging.getLogger("supportdesk.scheduler")

# The first key of the scheduler's advisory lock (DESIGN.md section 12; the mailbox
# fetchers' locks use 2010); its second key is 0: there is one scheduler.
LOCK_NAMESPACE = 2012
LOCK_KEY = 0

Job = Callable[[], int]
Jobs = Mapping[str, Job]


@dataclass
class Run:
    """What one tick did: `ran` False when another host held the lock."""

    ran: bool
    changed: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


class Scheduler:
    def __init__(
        self,
        lock: LockSession,
        jobs: Jobs | Callable[[], Jobs],
        *,
        interval: float,
    ):
        self.lock = lock
        # A callable is asked once, at the first run that holds the lock: a host that never
        # runs the jobs never builds what they need.
        self._jobs = jobs
        self.interval = interval
        self.stopping = threading.Event()

    def jobs(self) -> Jobs:
        if callable(self._jobs):
            self._jobs = self._jobs()
        return self._jobs

    def run_once(self) -> Run:
        """Every job once, if this host takes the lock; each job's failure is logged and
        does not stop the others (they run again at the next tick)."""
        if not self.lock.try_lock(LOCK_NAMESPACE, LOCK_KEY):
            log.debug("scheduler: another host is running the jobs")
            return Run(ran=False)
        run = Run(ran=True)
        try:
            for name, job in self.jobs().items():
                if self.stopping.is_set():
                    break
                try:
                    run.changed[name] = job()
                except Exception:  # a bug or an outage in one job: the next tick tries again
                    log.exception("scheduler: job %s failed", name)
                    run.failed.append(name)
        finally:
            self.lock.unlock(LOCK_NAMESPACE, LOCK_KEY)
        if any(run.changed.values()):
            log.info("scheduler: %s", ", ".join(f"{k} {v}" for k, v in run.changed.items()))
        return run

    def run(self) -> None:
        """Until `stop()`: a tick every `interval` seconds."""
        while not self.stopping.is_set():
            try:
                self.run_once()
            except psycopg.Error as ex:
                log.warning("scheduler: the database is unavailable (%r)", ex)
                self.lock.close()
            except Exception:  # a bug must not stop the worker; the next tick tries again
                log.exception("scheduler: unexpected error")
            self.stopping.wait(self.interval)
        self.lock.close()

    def stop(self) -> None:
        self.stopping.set()
