"""The inbound parse in a child process, with a deadline (issue 18; DESIGN.md section 6).

parse.py bounds what it knows to be slow, but it runs third-party parsers on hostile
input, and a regular expression holds the GIL for as long as it runs: in a thread of the
SMTP listener one froze the event loop (no EHLO answered, SIGTERM ignored), in a gunicorn
worker it ran into the 30 s timeout. Here a parse runs in a child process while the
caller's thread waits without the GIL. Past the deadline the child is killed and replaced,
and the message is kept unread, the whole of it attached (`parse_mime_unread`): mail is
never refused for its content, and it still threads by its headers. A parse that fails
unexpectedly is kept the same way (and logged as the bug it is). What the parse refuses
(no sender, too many parts) stays an AppError, as it was in-process.

The children: a small pool per process, made on first use and made anew in a process
forked from it (gunicorn's workers), each child started by multiprocessing's forkserver
(the parents are multithreaded, so no plain fork; the forkserver has imported the parser,
so a replacement starts in ~50 ms, where a spawned one took ~0.8 s). A child limits its
own address space (RLIMIT_AS) and, before each parse, its CPU time to what it has used
plus the deadline and a margin (RLIMIT_CPU), so that it stops even if its parent is gone.

Why not pebble's ProcessPool (which kills and replaces a worker on timeout too): on the
same 5 KB message (parsed in 4.1 ms in-process) it added 0.73 ms of CPU per parse (0.25 ms
in the parent) against 0.42 ms (0.15 ms) here, and adds three threads to each process;
the life cycle needed here (a pool per process id, errors carried back as AppErrors,
closing at shutdown) is this module. The main module of a process that parses must be
importable without side effects (`if __name__ == "__main__"`), as for any forkserver.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import resource
import signal
import threading
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from supportdesk.core.config import MAX_INBOUND_PARSE_SECONDS
from supportdesk.core.errors import AppError, BadRequest, ServiceUnavailable, ValidationFailed
from supportdesk.mail.inbound.parse import (
    InboundEmail,
    parse_json,
    parse_json_unread,
    parse_mime,
    parse_mime_unread,
)

log = logging.getLogger("supportdesk.mail.inbound.sandbox")

PROCESSES = max(2, os.cpu_count() or 2)  # children per process, started only when needed
MEMORY_LIMIT = 4 * 1024**3  # bytes of address space a child may map
CPU_MARGIN = 2  # seconds of CPU past the deadline before the kernel stops a child


class ParseTimedOut(Exception):
    """The parse ran past its deadline; its child was killed."""


class ParseCrashed(Exception):
    """The parse failed unexpectedly (a bug, or its child died); the message says how."""


class ParseUnavailable(ServiceUnavailable):
    """The process is shutting down: nothing was parsed, try again later."""


class ParseSandbox:
    """`parse_mime` and `parse_json` in a child process, within `seconds` and
    SECONDS_PER_MB for each megabyte of the message (at most MAX_INBOUND_PARSE_SECONDS:
    the webhook answers within the 30 s a request may take: supportdesk.web.server)."""

    # What a large, ordinary message needs on top: 5 files of 9 MiB (65 MB of MIME) parse
    # in about 3 s on 2 cores, most of it the email package and the files' way back.
    SECONDS_PER_MB = 0.1

    def __init__(self, seconds: float):
        self.seconds = seconds

    def deadline(self, size: int) -> float:
        """Seconds the parse of `size` bytes may take."""
        return min(MAX_INBOUND_PARSE_SECONDS, self.seconds + size / 1e6 * self.SECONDS_PER_MB)

    def parse_mime(self, raw: bytes) -> InboundEmail:
        try:
            return self.run("mime", raw)
        except (ParseTimedOut, ParseCrashed) as failed:
            _log_unread(failed)
            return parse_mime_unread(raw)

    def parse_json(self, payload: Mapping[str, Any], body: bytes) -> InboundEmail:
        """`payload` is `body` read as a JSON object. The child reads `body` again (a
        deeply nested payload would not pickle); it is what is attached if not read."""
        try:
            return self.run("json", body)
        except (ParseTimedOut, ParseCrashed) as failed:
            _log_unread(failed)
            return parse_json_unread(payload, body)

    def run(self, kind: str, arg: Any) -> InboundEmail:
        """The parse's result or its AppError; ParseTimedOut, ParseCrashed, or
        ParseUnavailable once the pool is closed."""
        return _shared_pool().run(kind, arg, self.deadline(len(arg)))

    @staticmethod
    def close() -> None:
        """Kill this process's children, for good (at shutdown): a parse waiting on one,
        and any later one, raises ParseUnavailable."""
        with _pool_lock:
            pool = _pool
        if pool is not None:
            pool.close()


def _log_unread(failed: Exception) -> None:
    if isinstance(failed, ParseTimedOut):
        log.warning("inbound message not read within its deadline: kept unread, attached")
    else:
        log.error("inbound message kept unread, attached: the parse failed: %s", failed)


# --- the pool ------------------------------------------------------------------------------


class _Child:
    def __init__(self, context: Any):
        self.conn, theirs = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(theirs,), daemon=True, name="supportdesk-parse"
        )
        self.process.start()
        theirs.close()

    def call(self, kind: str, arg: Any, seconds: float) -> InboundEmail:
        try:
            self.conn.send((kind, arg, seconds))
            if not self.conn.poll(seconds):
                raise ParseTimedOut(f"no answer within {seconds} s")
            answer = self.conn.recv()
        except (EOFError, OSError) as lost:  # killed, or out of memory or CPU time
            raise ParseCrashed(f"its process stopped ({self.process.exitcode})") from lost
        if answer[0] == "ok":
            return answer[1]
        if answer[0] == "error":
            code, message, details = answer[1:]
            if code == ValidationFailed.code:
                raise ValidationFailed(details, message)
            raise BadRequest(message, details)
        raise ParseCrashed(answer[1])

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


class _Pool:
    def __init__(self, size: int):
        self.pid = os.getpid()
        self.size = size
        self.idle: list[_Child] = []
        self.busy: set[_Child] = set()
        self.starting = 0
        self.changed = threading.Condition()
        self.closed = False
        self.context = multiprocessing.get_context("forkserver")
        # Only takes effect if this process has not started its forkserver yet.
        self.context.set_forkserver_preload([__name__])

    def run(self, kind: str, arg: Any, seconds: float) -> InboundEmail:
        child = self._take()
        try:
            result = child.call(kind, arg, seconds)
        except AppError:
            self._give_back(child)
            raise
        except BaseException:
            self._discard(child)
            if self.closed:
                raise ParseUnavailable() from None
            raise
        self._give_back(child)
        return result

    def _take(self) -> _Child:
        """An idle child, or a new one while there are fewer than `size`; else wait."""
        with self.changed:
            while True:
                if self.closed:
                    raise ParseUnavailable()
                while self.idle:
                    child = self.idle.pop()
                    if child.process.is_alive():
                        self.busy.add(child)
                        return child
                    child.conn.close()  # died idle (killed from outside): replaced
                if len(self.busy) + self.starting < self.size:
                    self.starting += 1
                    break
                self.changed.wait()
        try:
            child = _Child(self.context)  # outside the lock: it takes a moment
        finally:
            with self.changed:
                self.starting -= 1
                self.changed.notify()
        with self.changed:
            self.busy.add(child)
        return child

    def _give_back(self, child: _Child) -> None:
        with self.changed:
            self.busy.discard(child)
            if self.closed:
                child.kill()
            else:
                self.idle.append(child)
            self.changed.notify()

    def _discard(self, child: _Child) -> None:
        child.kill()
        with self.changed:
            self.busy.discard(child)
            self.changed.notify()

    def close(self) -> None:
        with self.changed:
            self.closed = True
            children = [*self.idle, *self.busy]
            self.idle.clear()
            self.changed.notify_all()
        for child in children:
            child.process.kill()


_pool_lock = threading.Lock()
_pool: _Pool | None = None


def _shared_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            _pool = _Pool(PROCESSES)
        return _pool


def _forget_pool_after_fork() -> None:
    """In a forked child: the parent's pool (and a lock another thread may have held at the
    fork) are the parent's; the child makes its own on first use."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


# --- the child -----------------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    """A child's loop: parse what comes, answer, until the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the parent stops us
    _soft_limit(resource.RLIMIT_AS, MEMORY_LIMIT)
    while True:
        try:
            kind, arg, seconds = conn.recv()
        except EOFError:
            return
        used = resource.getrusage(resource.RUSAGE_SELF)
        _soft_limit(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime + seconds) + CPU_MARGIN)
        conn.send(_parse(kind, arg))


def _parse(kind: str, arg: Any) -> tuple[Any, ...]:
    try:
        return ("ok", parse_mime(arg) if kind == "mime" else parse_json(json.loads(arg), arg))
    except AppError as error:
        return ("error", error.code, error.message, error.details)
    except Exception:
        return ("failed", traceback.format_exc())


def _soft_limit(kind: int, value: int) -> None:
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard))
