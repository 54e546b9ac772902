"""Running `supportdesk` commands as processes, the way a user starts them."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supportdesk.core.config import Settings

SUPPORTDESK = str(Path(sys.executable).parent / "supportdesk")


def supportdesk_env(
    database_url: str, redis_url: str, secret_key: str, **settings: str
) -> dict[str, str]:
    """This process's environment with the settings a `supportdesk` process reads: the
    given servers and key, ENVIRONMENT=test unless `settings` says otherwise, the budgets
    of acknowledgements to one domain and in all lifted (tests open many tickets from
    example.org; the budgets have tests of their own), an UPLOAD_DIR of its own unless
    given (never the project's var/uploads, whose files the test database has no rows for:
    a worker's orphan sweep would remove them), and the rest of `settings` (names as in the
    README, values as text)."""
    return (
        dict(os.environ)
        | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret_key,
            "ENVIRONMENT": "test",
            "ACKS_PER_DOMAIN_PER_HOUR": "1000000",
            "ACKS_PER_HOUR": "1000000",
            "UPLOAD_DIR": _upload_dir(),
        }
        | settings
    )


def _upload_dir() -> str:
    """A folder of its own for a process's uploads, removed when the test process ends."""
    folder = tempfile.mkdtemp(prefix="sd-uploads-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def settings_env(settings: Settings, **over: str) -> dict[str, str]:
    """supportdesk_env for the servers and key of `settings`, with its DIRECT_DATABASE_URL
    (where a worker takes its session locks) when it has one."""
    direct = (
        {"DIRECT_DATABASE_URL": settings.direct_database_url}
        if settings.direct_database_url
        else {}
    )
    return supportdesk_env(
        settings.database_url or "",
        settings.redis_url or "",
        settings.secret_key,
        **({"UPLOAD_DIR": str(settings.upload_dir)} | direct | over),
    )


def wait_until_healthy(url: str, process, where: object, timeout: float = 30) -> None:
    """Until `url`/healthz answers 200; RuntimeError naming `where` (its log) if the
    process exits or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the web process did not start; see {where}") from None
            time.sleep(0.2)
