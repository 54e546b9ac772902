"""The fetchers of one worker process: at most one per mailbox across every host (DESIGN.md
sections 9 and 10).

Each mailbox's fetcher runs under a PostgreSQL session advisory lock, taken with
`pg_try_advisory_lock` on a connection of its own (core/session_locks.py, on
DIRECT_DATABASE_URL: behind a transaction pooler a session lock would belong to whichever
client the pooler hands that server connection to next; the scheduler uses the same). Every
`rescan` seconds a worker lists the mailboxes to fetch, takes the locks no one holds and
starts a fetcher thread for each; it stops (and lets go of) those whose mailbox was deleted,
deactivated, marked REAUTHORIZE or edited (an edited one starts again with its new settings;
a refreshed OAuth token is no edit). A worker that loses its lock connection has lost every
lock with it: it stops all its fetchers at once, and another worker, or itself once
connected again, takes them over at its next rescan. A host that dies loses its connection,
PostgreSQL ends its session, and its mailboxes are taken over within a rescan.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from supportdesk.core.db import Database, queries
from supportdesk.core.session_locks import LockSession

if TYPE_CHECKING:  # the fetchers, and the inbound path they load, only once there is one
    from supportdesk.mail.inbound.fetcher import MailboxFetcher

log = logging.getLogger("supportdesk.mail.fetcher")

_fetchable_mailboxes = queries.fetchable_mailboxes

# The first key of the two-key advisory locks that stand for "fetching mailbox <id>" (the
# digits of issue 20 and DESIGN.md section 10): other locks use other first keys.
LOCK_NAMESPACE = 2010
# How often a worker looks for mailboxes to take over: a lost host's are fetched again
# within this (DESIGN.md section 9: within a minute).
RESCAN_SECONDS = 30.0

MakeFetcher = Callable[[int, threading.Event], "MailboxFetcher"]


@dataclass
class _Running:
    fetcher: MailboxFetcher
    thread: threading.Thread
    settings_key: str


class MailboxFetchers:
    def __init__(
        self,
        db: Database,
        lock_database_url: str,
        make_fetcher: MakeFetcher,
        *,
        rescan: float = RESCAN_SECONDS,
        join_seconds: float = 40.0,
        connect: Callable[[str], psycopg.Connection] | None = None,
    ):
        self.db = db
        self.lock_database_url = lock_database_url
        self.make_fetcher = make_fetcher
        self.rescan = rescan
        # How long a stopping fetcher may take (its socket's timeout, and a margin): its
        # lock is let go only once it has stopped.
        self.join_seconds = join_seconds
        self.locks = LockSession(lock_database_url, connect, on_lost=self._stop_fetchers)
        self.running: dict[int, _Running] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        """Until `stop()`: rescan, start and stop fetchers; then stop them all."""
        while not self.stopping.is_set():
            try:
                self.scan()
            except psycopg.Error as ex:
                log.warning("mailbox fetchers: the database is unavailable (%r)", ex)
                self._lost_locks()
            except Exception:  # a bug must not stop the worker; the next scan tries again
                log.exception("mailbox fetchers: unexpected error")
            self.stopping.wait(self.rescan)
        self.stop_all()
        self.locks.close()

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        """After `run` has returned: the parse children of the fetchers (if any ran) and
        the database pool."""
        import sys

        sandbox = sys.modules.get("supportdesk.mail.inbound.sandbox")
        if sandbox is not None:
            sandbox.ParseSandbox.close()
        self.db.close()

    def scan(self) -> None:
        """One look: which mailboxes to fetch, which to stop fetching."""
        self.locks.connection()  # checked first: a lost one stops the fetchers it held
        with self.db.transaction() as conn:
            wanted = {row["id"]: row["settings_key"] for row in _fetchable_mailboxes(conn)}
        for mailbox_id, running in list(self.running.items()):
            if wanted.get(mailbox_id) != running.settings_key or not running.thread.is_alive():
                self._stop_one(mailbox_id)
        for mailbox_id, settings_key in wanted.items():
            if mailbox_id in self.running or self.stopping.is_set():
                continue
            if self.locks.try_lock(LOCK_NAMESPACE, mailbox_id):
                self._start_one(mailbox_id, settings_key)

    def stop_all(self) -> None:
        for running in self.running.values():
            running.fetcher.stop.set()
        for mailbox_id in list(self.running):
            self._stop_one(mailbox_id)

    # --- one fetcher -------------------------------------------------------------------------

    def _start_one(self, mailbox_id: int, settings_key: str) -> None:
        fetcher = self.make_fetcher(mailbox_id, threading.Event())
        thread = threading.Thread(target=fetcher.run, name=f"mailbox-{mailbox_id}", daemon=True)
        self.running[mailbox_id] = _Running(fetcher, thread, settings_key)
        thread.start()
        log.info("mailbox %s: fetching here", mailbox_id)

    def _stop_one(self, mailbox_id: int, *, release: bool = True) -> None:
        running = self.running[mailbox_id]
        running.fetcher.stop.set()
        running.thread.join(self.join_seconds)
        if running.thread.is_alive():  # stuck in a socket call: its lock stays held
            log.warning("mailbox %s: its fetcher has not stopped yet", mailbox_id)
            return
        del self.running[mailbox_id]
        if release:  # (a lost connection has let go of it already)
            self.locks.unlock(LOCK_NAMESPACE, mailbox_id)

    # --- the lock connection -----------------------------------------------------------------

    def _lost_locks(self) -> None:
        """The database went away: the lock connection may have gone with it, so the
        fetchers stop and the next scan connects and takes the locks again."""
        self._stop_fetchers()
        self.locks.close()

    def _stop_fetchers(self) -> None:
        """The locks are gone: so must the fetchers that held them be."""
        if self.running:
            log.warning("mailbox fetchers: stopping %d fetcher(s): locks lost", len(self.running))
        for running in self.running.values():
            running.fetcher.stop.set()
        for mailbox_id in list(self.running):
            self._stop_one(mailbox_id, release=False)
