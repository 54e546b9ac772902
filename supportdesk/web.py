"""Serving the app with gunicorn, configured from our own command line."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


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


def serve(host: str, port: int, workers: int, *, reload: bool = False) -> None:
    GunicornServer(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": 4,
            "reload": reload,
            # Our own request log (middleware.RequestLog): gunicorn's would write query
            # strings, and signed links carry their signature there.
            "accesslog": None,
            "errorlog": "-",
            "timeout": 30,
            "graceful_timeout": 10,
        }
    ).run()
