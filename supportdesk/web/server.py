"""Serving the app with gunicorn, configured from our own command line."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

if TYPE_CHECKING:
    from supportdesk.core.clients import IPNetwork

# gunicorn's stock gthread worker: it keeps connections alive (a connection per request, as
# its sync worker makes, reached only 0.42-0.59 of the bare SQL's rate), two threads each,
# about two workers per core. Few threads, because the threads of one process share its GIL:
# a thread that has taken the month's ticket-number lock (held until commit) waits for the
# GIL after each round trip while the others run Python, and every ticket creation waits
# with it (2 workers x 4 threads created 0.59-0.68 of the bare SQL's tickets, 2 x 1
# 0.70-0.76). Two and not one, because gthread waits up to 5 s in a thread for a new
# connection's first bytes: with one thread a client that connects and sends nothing stalls
# the worker that long, with two the other thread serves on. Alternated rounds of
# `make bench-tickets BENCH_ARGS="--only creation"` on 2 cores (issue 19) could not tell one
# thread from two (medians 0.67 and 0.67 of the bare SQL) nor either from the hand-made
# one-thread worker this replaced (0.68). Slow clients are the reverse proxy's to buffer
# (README).
THREADS_PER_WORKER = 2

# What a request may take: gunicorn restarts a worker whose main loop is silent this long,
# but gthread's main loop does not wait on requests, so it does not bound one. The app's
# own limits do, each well inside it, so that a client gets its 503 within this: the wait
# for a database connection (DB_POOL_TIMEOUT), a statement or lock (DB_STATEMENT_TIMEOUT),
# storing files (supportdesk.files.storage), parsing an email (INBOUND_PARSE_SECONDS).
REQUEST_TIMEOUT_SECONDS = 30


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

    Each worker serves two requests at a time, and a request is not being served until its
    headers have arrived: four clients that trickle header bytes hold two workers' threads
    for as long as they go on (issue 18, finding 8). A buffering reverse proxy in
    front takes that wait. Beyond loopback, TRUSTED_PROXIES is what says one is there: a
    proxy without it is a misconfiguration already (every client would count as the proxy
    in the per-address limits), and a public address without a proxy is this outage."""
    if is_loopback(host) or trusted_proxies:
        return None
    return (
        f"supportdesk: refusing to serve on {host!r}, an address beyond loopback, without a "
        "reverse proxy in front. Each web worker serves two requests at a time, so a few "
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
        "worker_class": "gthread",
        "threads": threads,
        "reload": reload,
        # Our own request log (middleware.RequestLog): gunicorn's would write query
        # strings, and signed links carry their signature there.
        "accesslog": None,
        "errorlog": "-",
        "timeout": REQUEST_TIMEOUT_SECONDS,
        "graceful_timeout": 10,
    }
