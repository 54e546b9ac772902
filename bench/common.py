"""What every benchmark needs: real PostgreSQL and Redis, and honest statistics.

By default the servers are embedded ones started for the run (fsync on: this is a
measurement); BENCH_DATABASE_URL / BENCH_REDIS_URL select external servers instead. Each run
gets its own freshly migrated database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from supportdesk.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from supportdesk.migrate import apply_migrations


@contextlib.contextmanager
def services() -> Iterator[tuple[str, str]]:
    """(database_url, redis_url) of a fresh, migrated database and an empty Redis."""
    with contextlib.ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="sd-bench-"))
        # Removed last, after the servers stopped: a million-ticket run leaves a gigabyte.
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        server_url = os.environ.get("BENCH_DATABASE_URL")
        if not server_url:
            pg = EmbeddedPostgres(base / "pg", free_port(), log_file=base / "pg.log").start()
            stack.callback(pg.stop)
            server_url = pg.url()
        redis_url = os.environ.get("BENCH_REDIS_URL")
        if not redis_url:
            rd = EmbeddedRedis(base / "redis", free_port(), persist=False).start()
            stack.callback(rd.stop)
            redis_url = rd.url()
        name = f"sdbench_{secrets.token_hex(4)}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        database_url = urlsplit(server_url)._replace(path="/" + name).geturl()

        def drop() -> None:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

        stack.callback(drop)
        apply_migrations(database_url)
        yield database_url, redis_url


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe(values: list[float]) -> str:
    """Milliseconds: median, p95, n."""
    ms = [v * 1000 for v in values]
    return (
        f"median {statistics.median(ms):8.2f} ms   p95 {percentile(ms, 95):8.2f} ms   n={len(ms)}"
    )
