"""Workers against the real things: the test PostgreSQL and Redis, and an SMTP server in
this process (tests/mailserver.py). Timings are shortened instead of waited out."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from supportdesk.mail.outbound.sender import SmtpSender
from supportdesk.worker.delivery import Timings
from supportdesk.worker.worker import EmailWorker
from tests.mailserver import SmtpTestServer
from tests.processes import SUPPORTDESK, settings_env

FAST = Timings(retry_base=0.1, retry_max=0.4, max_attempts=4, sweep_every=0.2, heartbeat=0.2)


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    server = SmtpTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_worker(db, redis_client, redis_url, smtp_server):
    """make_worker(timings=FAST, port=...) -> an EmailWorker on the test services."""
    clients: list[redis.Redis] = []

    def make(timings: Timings = FAST, port: int | None = None, **over) -> EmailWorker:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        clients.append(client)
        sender = SmtpSender("127.0.0.1", port or smtp_server.port, timeout=5)
        return EmailWorker(
            db,
            client,
            sender,
            default_from="Support Desk <support@example.com>",
            bounce_address="support@example.com",
            timings=timings,
            **over,
        )

    yield make
    for client in clients:
        client.close()


@contextmanager
def running(*workers: EmailWorker) -> Iterator[None]:
    """The workers' run loops in threads, stopped (and joined) when the block ends."""
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(15)
            assert not thread.is_alive(), "a worker did not stop"


def wait_until(condition, timeout: float = 10, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")


def outbox_statuses(db) -> dict[int, str]:
    with db.transaction() as conn:
        return dict(conn.execute("SELECT id, status::text FROM email_outbox ORDER BY id"))


@pytest.fixture
def worker_process(base_settings, smtp_server, tmp_path):
    """worker_process(name, **env) -> a `supportdesk worker` subprocess on the test services
    (fast timings), its output in tmp_path/<name>.log; all are killed at the end."""
    procs: list[subprocess.Popen] = []

    def start(name: str, **env_over: str) -> subprocess.Popen:
        env = settings_env(
            base_settings,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp_server.port),
            SMTP_TIMEOUT="10",
            EMAIL_RETRY_BASE_SECONDS="0.1",
            EMAIL_RETRY_MAX_SECONDS="0.4",
            EMAIL_SWEEP_SECONDS="0.2",
            WORKER_HEARTBEAT_SECONDS="0.2",
            **env_over,
        )
        log = (tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [SUPPORTDESK, "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_path = tmp_path / f"{name}.log"  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def services(settings, db, redis_client):
    """The web app's services (the producers of email) on the test services."""
    from supportdesk.core.redis_client import make_redis
    from supportdesk.web.services import build_services

    return build_services(settings, db, make_redis(settings))


@pytest.fixture
def open_ticket(services):
    """open_ticket(**over) -> a ticket opened as the public form opens it (so its
    acknowledgement is in the outbox and its id on the queue)."""
    from supportdesk.tickets.inputs import NewTicket

    def make(**over):
        fields = {
            "name": "Cleo Customer",
            "email": "cleo@example.org",
            "subject": "The printer jams",
            "body": "Tray 2 jams on every page.",
            "priority": "NORMAL",
        } | over
        return services.tickets.create(NewTicket(**fields), channel="WEB")

    return make
