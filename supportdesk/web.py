"""Serving the app with gunicorn, configured from our own command line."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

# One request at a time per worker process; add workers, not threads (about two per core).
# Threads of one process share its GIL: a thread that has taken the month's ticket-number
# lock (held until commit) waits for the GIL after each round trip while the other threads
# run Python, and every ticket creation everywhere waits with it. Measured with
# `make bench-tickets BENCH_ARGS="--only creation"` on 2 cores: 2 workers x 4 threads held
# that lock 1.7-1.9 ms per ticket and created 0.59-0.68 of the bare SQL's tickets; 2 x 1
# held it 0.85-0.9 ms and created 0.70-0.76. Slow clients are the reverse proxy's to
# buffer (README).
THREADS_PER_WORKER = 1


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
        from supportdesk.app import create_app

        return create_app()


def serve(
    host: str, port: int, workers: int, threads: int | None = None, *, reload: bool = False
) -> None:
    GunicornServer(gunicorn_options(host, port, workers, threads, reload=reload)).run()


def gunicorn_options(
    host: str, port: int, workers: int, threads: int | None = None, *, reload: bool = False
) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": THREADS_PER_WORKER if threads is None else threads,
        "reload": reload,
        # Our own request log (middleware.RequestLog): gunicorn's would write query
        # strings, and signed links carry their signature there.
        "accesslog": None,
        "errorlog": "-",
        "timeout": 30,
        "graceful_timeout": 10,
    }
