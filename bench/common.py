"""What every benchmark needs: real PostgreSQL and Redis, and honest statistics.

By default the servers are embedded ones started for the run (fsync on: this is a
measurement); BENCH_DATABASE_URL / BENCH_REDIS_URL select external servers instead. Each run
gets its own freshly migrated database.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from supportdesk.core.config import Settings
from supportdesk.core.migrate import apply_migrations
from supportdesk.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from supportdesk.web.server import THREADS_PER_WORKER

SUPPORTDESK = str(Path(sys.executable).parent / "supportdesk")
SECRET_KEY = "bench-secret-key-" + "x" * 32


@contextlib.contextmanager
def services() -> Iterator[tuple[str, str]]:
    """(database_url, redis_url) of a fresh, migrated database and a Redis: an empty one of
    its own, or BENCH_REDIS_URL's as it is."""
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


@contextlib.contextmanager
def sibling_database(database_url: str) -> Iterator[str]:
    """Another fresh, migrated database on the same server, dropped afterwards."""
    name = f"sdbench_{secrets.token_hex(4)}"
    server_url = urlsplit(database_url)._replace(path="/postgres").geturl()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(database_url)._replace(path="/" + name).geturl()
    try:
        apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


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


def bench_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    """The settings a benchmark's own services are built with: its servers, its key, the
    test environment, then `overrides`."""
    base: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "secret_key": SECRET_KEY,
        "environment": "test",
        # Thousands of acknowledgements to one domain: counted, never hit (as on the server).
        "acks_per_domain": 10**9,
        "acks_per_hour": 10**9,
    }
    return Settings(**(base | overrides))  # type: ignore[arg-type]


# --- the server -------------------------------------------------------------------------------


def server_shape(workers: int) -> str:
    """How `web_server` serves, for a benchmark's first line."""
    return f"{workers} gunicorn gthread workers x {THREADS_PER_WORKER} thread(s)"


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int):
        self.process = process
        self.port = port

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def web_server(
    database_url: str, redis_url: str, workers: int, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """`supportdesk web` as a user starts it, with `env` on top of the bench settings; its
    access log goes to a file, not the screen."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="sd-bench-web-"))  # no stray .env is read
    env = (
        dict(os.environ)
        | {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "ENVIRONMENT": "test",
            "SECRET_KEY": SECRET_KEY,
            # 8 clients on one address create thousands of tickets: lift the public limits
            # (they are still counted, so their cost is in the measurement).
            "PUBLIC_TICKETS_PER_ADDRESS_PER_HOUR": "1000000000",
            "PUBLIC_TICKETS_PER_REQUESTER_PER_HOUR": "1000000000",
            "ACKS_PER_DOMAIN_PER_HOUR": "1000000000",
            "ACKS_PER_HOUR": "1000000000",
        }
        | (env or {})
    )
    log = open(workdir / "web.log", "wb")  # noqa: SIM115 - closed below, after the process
    argv = [SUPPORTDESK, "web", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*argv, "--workers", str(workers)], cwd=workdir, env=env, stdout=log, stderr=log
    )
    try:
        wait_healthy(port, process, timeout=60)
        yield Server(process, port)
    except BaseException:
        log.flush()
        print((workdir / "web.log").read_text()[-3000:], file=sys.stderr)  # why it failed
        raise
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"supportdesk web exited with code {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("supportdesk web did not become healthy")


# --- where the CPU goes -----------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(web_pid: int | None = None) -> dict[int, tuple[str, float]]:
    """CPU seconds used so far (user + system) by each process of this machine, with its
    role: this benchmark (its load generator or in-process calls), the web server's
    processes, PostgreSQL, Redis or other. Every PostgreSQL and Redis process of the machine
    counts: on a busy machine they include others' work. Linux only ({} elsewhere)."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return {}
    me = os.getpid()
    found: dict[int, tuple[str, float]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # gone meanwhile
            continue
        pid, parent = int(entry.name), int(fields[1])
        if pid == me:
            role = "benchmark"
        elif web_pid is not None and web_pid in (pid, parent):
            role = "web"
        elif b"postgres" in command:
            role = "PostgreSQL"
        elif b"redis-server" in command:
            role = "Redis"
        else:
            role = "other"
        found[pid] = (role, (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


def cpu_used_by_role(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds by role between two `cpu_seconds` readings, for the processes seen in
    both (a process that ended meanwhile took its count with it)."""
    used: dict[str, float] = {}
    for pid, (role, seconds) in after.items():
        if pid in before:
            used[role] = used.get(role, 0.0) + seconds - before[pid][1]
    return used


# --- load -----------------------------------------------------------------------------------


def run_concurrently(
    total: int, clients: int, make_worker: Callable[[], Callable[[int], None]]
) -> tuple[float, list[float]]:
    """`total` calls spread over `clients` threads; (wall seconds, each call's seconds)."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[BaseException] = []

    def loop() -> None:
        work = make_worker()
        mine: list[float] = []
        try:
            while True:
                with lock:
                    n = next(counter)
                if n >= total:
                    break
                started = time.perf_counter()
                work(n)
                mine.append(time.perf_counter() - started)
        except BaseException as ex:
            errors.append(ex)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return wall, latencies
