"""Redis going away in the middle of a run, and a Redis that hangs (issue 10): staff who
are logged in keep working, customers can still open tickets (their emails wait in the
outbox), logins are a clean 503, and everything comes back with Redis."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis
import webtest

from supportdesk.dev.embedded import EmbeddedRedis, free_port
from supportdesk.web.app import create_app
from tests.conftest import STAFF_PASSWORD

NEW = {"name": "Cleo", "email": "cleo@example.org", "subject": "Help", "body": "Please."}


def _app(settings, db, url):
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    return webtest.TestApp(create_app(settings, db=db, redis_client=client))


def _login(app, status):
    return app.post_json(
        "/api/auth/login", {"email": "ana@example.com", "password": STAFF_PASSWORD}, status=status
    )


def _what_was_kept(db):
    with db.transaction() as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM tickets), "
            "(SELECT count(*) FROM email_outbox WHERE status = 'PENDING')"
        ).fetchone()


def test_redis_stopped_mid_run_and_started_again(settings, db, make_staff, tmp_path):
    make_staff("ADMIN", email="ana@example.com")
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", port, persist=False).start()
    try:
        app = _app(settings, db, server.url())
        token = _login(app, 200).json["token"]
        staff = {"Authorization": f"Bearer {token}"}
        app.post_json("/api/tickets", NEW, status=201)

        server.stop()
        app.get("/api/tickets", headers=staff, status=200)
        app.post_json("/api/tickets", NEW, status=201)
        assert _what_was_kept(db) == (2, 2)
        resp = _login(app, 503)
        assert resp.json["error"]["code"] == "service_unavailable"
        assert app.get("/healthz", status=503).json["error"]["details"]["redis"] == "unavailable"

        server = EmbeddedRedis(tmp_path / "redis", port, persist=False).start()
        _login(app, 200)
        app.get("/healthz", status=200)
        app.post("/api/auth/logout", headers=staff, status=204)
        app.get("/api/tickets", headers=staff, status=401)
    finally:
        server.stop()


@pytest.fixture
def hanging_redis():
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_hanging_redis_costs_a_timeout_not_the_service(
    settings, db, make_staff, bearer, hanging_redis
):
    make_staff("ADMIN", email="ana@example.com")
    staff = bearer(make_staff("AGENT"))
    app = _app(settings, db, hanging_redis)
    started = time.monotonic()
    app.get("/api/tickets", headers=staff, status=200)
    app.post_json("/api/tickets", NEW, status=201)
    assert _what_was_kept(db) == (1, 1)
    assert _login(app, 503).json["error"]["code"] == "service_unavailable"
    assert app.get("/healthz", status=503).json["error"]["details"]["redis"] == "unavailable"
    assert time.monotonic() - started < 10  # a few timeouts of half a second, not a hang
