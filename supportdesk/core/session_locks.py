"""Session advisory locks: what must run on one host at a time (DESIGN.md section 9).

A `LockSession` is a connection of its own, on DIRECT_DATABASE_URL (behind a transaction
pooler a session lock would belong to whichever client the pooler hands that server
connection to next), holding two-key advisory locks: the first key names what is locked (a
namespace: the mailbox fetchers', the scheduler's), the second which one. A lock is held
until released or until the connection ends: a host that dies loses its connection,
PostgreSQL ends its session, and the lock is free for another host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

from supportdesk.core.db import queries

log = logging.getLogger("supportdesk.locks")

_try_advisory_lock = queries.try_advisory_lock
_release_advisory_lock = queries.release_advisory_lock
_lock_session_alive = queries.lock_session_alive


class LockSession:
    def __init__(
        self,
        url: str,
        connect: Callable[[str], psycopg.Connection] | None = None,
        *,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self._connect = connect or (lambda url: psycopg.connect(url, autocommit=True))
        # Called when the connection is found lost: whatever ran under its locks must stop.
        self._on_lost = on_lost
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        """The connection that holds the locks, checked; a lost one is replaced, after
        `on_lost` (every lock it held went with it). psycopg.Error when the database
        cannot be reached."""
        if self._conn is not None:
            try:
                _lock_session_alive(self._conn)
                return self._conn
            except psycopg.Error as ex:
                log.warning("the lock connection was lost (%r)", ex)
                self.close()
                if self._on_lost is not None:
                    self._on_lost()
        self._conn = self._connect(self.url)
        return self._conn

    def try_lock(self, namespace: int, key: int) -> bool:
        """Take the lock unless another session holds it; no waiting."""
        return bool(_try_advisory_lock(self.connection(), namespace=namespace, key=key))

    def unlock(self, namespace: int, key: int) -> None:
        """Let go of a lock this session holds; a lost connection has let go already."""
        if self._conn is None or self._conn.closed:
            return
        try:
            _release_advisory_lock(self._conn, namespace=namespace, key=key)
        except psycopg.Error as ex:
            log.warning("lock (%s, %s) not released: %r", namespace, key, ex)
            self.close()

    def close(self) -> None:
        """End the session: every lock it held is released with it."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
