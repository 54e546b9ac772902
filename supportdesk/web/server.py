"""Serving the app with gunicorn, configured from our own command line."""

from __future__ import annotations

import contextlib
import ipaddress
import select
import time
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers import gthread

if TYPE_CHECKING:
    from supportdesk.core.clients import IPNetwork

# One request at a time per worker process; add workers, not threads (about two per core).
# Threads of one process share its GIL: a thread that has taken the month's ticket-number
# lock (held until commit) waits for the GIL after each round trip while the other threads
# run Python, and every ticket creation everywhere waits with it. Measured with
# `make bench-tickets BENCH_ARGS="--only creation"` on 2 cores: 2 workers x 4 threads held
# that lock 1.7-1.9 ms per ticket and created 0.59-0.68 of the bare SQL's tickets; 2 x 1
# held it 0.85-0.9 ms and created 0.70-0.76. Slow clients are the reverse proxy's to
# buffer (README). One thread is served by OneThreadWorker, more by gunicorn's gthread.
THREADS_PER_WORKER = 1

# A request still running after this long gets its worker restarted (OneThreadWorker's
# heartbeat comes from the thread that serves it); what a request waits for gives up sooner
# (the database pool, S3: supportdesk.files.storage).
REQUEST_TIMEOUT_SECONDS = 30


class OneThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker with its one thread's work done on the main thread.

    gthread hands every request to a pool thread and its result back through a pipe: two
    thread switches and a GIL handover a request, with nothing to overlap when the pool has
    one thread. Measured with interleaved rounds of `bench.tickets`' creation on 2 cores,
    this worker spends 0.1-0.2 ms less CPU per ticket and creates 3-15% more tickets a
    second. It calls gthread's own `handle` and `finish_request`, so keep-alive, request
    parsing, graceful shutdown and the limits stay gunicorn's (which is why setup.cfg
    keeps gunicorn to the minor version whose worker this extends).

    Three differences. As with gunicorn's sync worker, a new connection without its first
    bytes yet waits for them in the poller (gthread would wait up to 5 s in its thread,
    which here would stall the worker), at most `--keep-alive` seconds; and a request
    running longer than `--timeout` gets the worker restarted, since the heartbeat comes
    from this thread. And while one request is served, no other connection is looked at:
    one that has been idle for its keep-alive time by then is closed only if no request has
    arrived on it meanwhile (gthread's poller would have seen it; closing it would lose it).
    """

    def init_process(self) -> None:
        self.ready: deque[gthread.TConn] = deque()
        self.serving = False
        super().init_process()

    def get_thread_pool(self) -> Any:
        return _NoPool()

    def enqueue_req(self, conn: gthread.TConn) -> None:
        # finish_request calls back here when the client has already sent its next
        # request (pipelining): queued, not recursed into, so a long pipeline is a loop.
        self.ready.append(conn)
        if self.serving:
            return
        self.serving = True
        try:
            while self.ready:
                conn = self.ready.popleft()
                self.finish_request(conn, self._serve(conn))
        finally:
            self.serving = False

    def _serve(self, conn: gthread.TConn) -> Future[Any]:
        done: Future[Any] = Future()
        if not conn.initialized and not conn.data_ready and not _has_bytes(conn.sock):
            done.set_result(gthread._DEFER)  # to the poller until its first bytes arrive
            return done
        self.notify()  # the heartbeat: `--timeout` counts from here, for each request
        try:
            done.set_result(self.handle(conn))  # handle() answers the request's own errors
        except Exception as ex:  # and finish_request closes the connection for anything else
            self.log.exception("Error handling request")
            done.set_exception(ex)
        return done

    def murder_keepalived(self, force: bool = False) -> None:
        if force:
            super().murder_keepalived(force)
        else:
            self._close_idle(self.keepalived_conns)

    def murder_pending(self) -> None:
        self._close_idle(self.pending_conns)

    def _close_idle(self, conns: deque[gthread.TConn]) -> None:
        """Close the connections whose keep-alive time has passed (gthread's murder_*), but
        not one whose request arrived while this thread was serving another: it stays with
        the poller, whose next round serves it along with the listener and the rest."""
        now = time.monotonic()
        waiting: list[gthread.TConn] = []
        while conns and conns[0].timeout <= now:
            conn = conns.popleft()
            if _has_bytes(conn.sock):
                waiting.append(conn)
                continue
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()
        conns.extendleft(reversed(waiting))  # at the front still: the order of the deadlines


def _has_bytes(sock: Any) -> bool:
    """Whether the socket is readable now: a request (or the client's close) is waiting."""
    poll = select.poll()
    try:
        poll.register(sock, select.POLLIN)
        events = poll.poll(0)
    except (OSError, ValueError):  # closed already
        return False
    return bool(events) and not events[0][1] & select.POLLNVAL  # NVAL: closed underneath


class _NoPool:
    """What gthread shuts down on its way out; OneThreadWorker has no threads to stop."""

    def shutdown(self, wait: bool = True) -> None:
        pass


def is_loopback(host: str) -> bool:
    """Whether binding `host` reaches this machine only: 127.0.0.0/8, ::1 or localhost. A
    name is not looked up (what it resolves to can change); only `localhost` counts."""
    name = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def public_bind_refusal(host: str, trusted_proxies: tuple[IPNetwork, ...]) -> str | None:
    """Why `supportdesk web` must not bind `host`, or None.

    Each worker serves one request at a time, and a request is not being served until its
    headers have arrived: two clients that trickle header bytes hold two workers until the
    request timeout, again and again (issue 18, finding 8). A buffering reverse proxy in
    front takes that wait. Beyond loopback, TRUSTED_PROXIES is what says one is there: a
    proxy without it is a misconfiguration already (every client would count as the proxy
    in the per-address limits), and a public address without a proxy is this outage."""
    if is_loopback(host) or trusted_proxies:
        return None
    return (
        f"supportdesk: refusing to serve on {host!r}, an address beyond loopback, without a "
        "reverse proxy in front. Each web worker serves one request at a time, so a few "
        "clients that send their requests slowly would hold them all; a buffering reverse "
        "proxy (nginx, Caddy, a cloud load balancer) must receive requests and pass them on "
        "whole. Put one in front and set TRUSTED_PROXIES to its address or CIDR (which also "
        "lets the rate limits tell clients apart), or bind 127.0.0.1 (the default), ::1 or "
        'localhost. See "Production" in README.md, step 4 ("Behind a reverse proxy").'
    )


class GunicornServer(BaseApplication):
    """gunicorn with `create_app()` loaded in each worker (no shared pool across forks)."""

    def __init__(self, options: dict[str, Any]):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self):
        from supportdesk.web.app import create_app

        return create_app()


def serve(
    host: str, port: int, workers: int, threads: int | None = None, *, reload: bool = False
) -> None:
    GunicornServer(gunicorn_options(host, port, workers, threads, reload=reload)).run()


def gunicorn_options(
    host: str, port: int, workers: int, threads: int | None = None, *, reload: bool = False
) -> dict[str, Any]:
    threads = THREADS_PER_WORKER if threads is None else threads
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": f"{__name__}.OneThreadWorker" if threads == 1 else "gthread",
        "threads": threads,
        "reload": reload,
        # Our own request log (middleware.RequestLog): gunicorn's would write query
        # strings, and signed links carry their signature there.
        "accesslog": None,
        "errorlog": "-",
        "timeout": REQUEST_TIMEOUT_SECONDS,
        "graceful_timeout": 10,
    }
