"""Every error is the envelope of DESIGN.md section 5, with a request id and no internals."""

from __future__ import annotations

import logging
import re

import pytest

from supportdesk.core.redis_client import make_redis
from supportdesk.web.app import create_app
from supportdesk.web.guards import ANYONE
from supportdesk.web.routes import Operation, Route
from tests.conftest import POOLER_URL, shared_app


class EchoJson:
    """A resource that reads a JSON body, as every JSON route does."""

    def on_post(self, req, resp):
        resp.media = {"got": req.get_media()}


class Explodes:
    def on_get(self, req, resp):
        raise RuntimeError("secret-internal-detail SELECT * FROM users")


def _route(path: str, method: str) -> Route:
    return Route(path, path, {method: Operation(ANYONE, "a test route")})


# Extra routes on the real app: the app-wide error handlers are what is under test.
EXTRA_ROUTES = (
    (_route("/api/test-echo", "POST"), EchoJson()),
    (_route("/api/test-explodes", "GET"), Explodes()),
    (_route("/test-explodes-page", "GET"), Explodes()),
)


@pytest.fixture
def client(settings, db, redis_client):
    import webtest

    return webtest.TestApp(shared_app(settings, db, extra_routes=EXTRA_ROUTES))


def assert_envelope(resp, status, code):
    assert resp.status_int == status
    assert resp.content_type == "application/json"
    error = resp.json["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == resp.headers["X-Request-ID"]
    return error


def test_unknown_route_is_a_404_envelope(client):
    assert_envelope(client.get("/api/no-such-thing", status=404), 404, "not_found")


def test_wrong_method_is_a_405_envelope(client):
    resp = client.post("/healthz", status=405)
    assert_envelope(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


@pytest.mark.parametrize("body", [b"{not json", b'{"a": }', b"\xff\xfe"])
def test_malformed_json_is_a_400_envelope(client, body):
    resp = client.post("/api/test-echo", body, content_type="application/json", status=400)
    error = assert_envelope(resp, 400, "bad_request")
    assert "JSON" in error["message"]


def test_well_formed_json_passes(client):
    resp = client.post_json("/api/test-echo", {"a": 1})
    assert resp.json == {"got": {"a": 1}}


def test_unsupported_content_type_is_a_415_envelope(client):
    resp = client.post("/api/test-echo", b"a=1", content_type="application/x-unknown", status=415)
    assert_envelope(resp, 415, "unsupported_media_type")


def test_unexpected_exception_is_a_500_without_internals(client, caplog):
    with caplog.at_level(logging.ERROR, logger="supportdesk.web.errors"):
        resp = client.get("/api/test-explodes", status=500)
    error = assert_envelope(resp, 500, "internal_error")
    assert "secret-internal-detail" not in resp.text
    assert "Traceback" not in resp.text
    assert "SELECT" not in resp.text
    # The log has the whole story, under the same request id.
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert error["request_id"] in logged
    assert any(
        r.exc_info and "secret-internal-detail" in str(r.exc_info[1]) for r in caplog.records
    )


def test_pages_get_errors_as_html(client):
    resp = client.get("/no-such-page", headers={"Accept": "text/html"}, status=404)
    assert resp.content_type == "text/html"
    assert resp.headers["X-Request-ID"] in resp.text
    assert "Nothing was found here." in resp.text


def test_page_crash_is_an_html_500_without_internals(client):
    resp = client.get("/test-explodes-page", headers={"Accept": "text/html"}, status=500)
    assert resp.content_type == "text/html"
    assert "secret-internal-detail" not in resp.text
    assert resp.headers["X-Request-ID"] in resp.text


def test_every_response_carries_a_request_id(client):
    ok = client.get("/healthz")
    missing = client.get("/api/nothing", status=404)
    assert ok.headers["X-Request-ID"] != missing.headers["X-Request-ID"]
    assert len(ok.headers["X-Request-ID"]) >= 8


def test_a_sane_incoming_request_id_is_kept(client):
    resp = client.get("/healthz", headers={"X-Request-ID": "lb-1234abcd"})
    assert resp.headers["X-Request-ID"] == "lb-1234abcd"
    error = client.get("/api/nothing", headers={"X-Request-ID": "lb-1234abcd"}, status=404)
    assert error.json["error"]["request_id"] == "lb-1234abcd"


@pytest.mark.parametrize("incoming", ["short", "x" * 200, "has spaces in it", "<script>"])
def test_an_odd_incoming_request_id_is_replaced(client, incoming):
    resp = client.get("/api/nothing", headers={"X-Request-ID": incoming}, status=404)
    replaced = resp.headers["X-Request-ID"]
    assert replaced != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)  # one of ours: a uuid4 in hex
    assert resp.json["error"]["request_id"] == replaced
    assert incoming not in resp.text


def test_database_outage_is_a_503_envelope(settings, redis_client, tokens):
    import webtest

    from supportdesk.core.db import Database
    from supportdesk.dev.embedded import free_port

    dead = settings.replace(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x", db_pool_timeout=1
    )
    db = Database(dead).open()
    try:
        client = webtest.TestApp(create_app(dead, db=db, redis_client=make_redis(settings)))
        body = {"name": "Cleo", "email": "cleo@example.org", "subject": "Hi", "body": "Hello"}
        resp = client.post_json("/api/tickets", body, status=503)
        page = client.get("/", headers={"Accept": "text/html"}, status=200)  # needs no DB
        # A 404 page for someone with a session cookie looks the user up for its header:
        # with the database down it is still the 404 page, shown as to anyone.
        token, _ = tokens.issue({"id": 1, "token_version": 0})
        client.set_cookie("session", token)
        lost = client.get("/no/such/page", headers={"Accept": "text/html"}, status=404)
        assert "Staff login" in lost.text
    finally:
        db.close()
    error = assert_envelope(resp, 503, "service_unavailable")
    assert "retry" in error["message"]
    assert "Traceback" not in resp.text
    assert "How can we help?" in page.text


def test_redis_outage_stops_logins_not_sessions(settings, db, make_staff, bearer):
    """Sessions and their logouts live in PostgreSQL: staff already logged in keep working
    while Redis is down. A login counts its attempt in Redis, so it is a clean 503."""
    import webtest

    from supportdesk.dev.embedded import free_port

    admin = make_staff("ADMIN", email="ana@example.com")
    headers = bearer(admin)  # issued while Redis is up
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = webtest.TestApp(shared_app(dead, db))
    client.get("/api/tickets", headers=headers, status=200)
    resp = client.post_json(
        "/api/auth/login", {"email": "ana@example.com", "password": "whatever it is"}, status=503
    )
    assert_envelope(resp, 503, "service_unavailable")


@pytest.mark.skipif(
    bool(POOLER_URL),
    reason="behind a transaction pooler a session SET stays with one server connection: "
    "README says to set statement_timeout on the app's role there",
)
def test_a_request_stuck_on_a_lock_gets_a_503_after_the_statement_timeout(settings, db):
    """gthread cuts no request short: DB_STATEMENT_TIMEOUT does, for the web's own pool. A
    ticket waiting for the month's number behind a lock nobody lets go gets its 503."""
    import threading
    import time

    import webtest

    from supportdesk.core.db import Database

    impatient = settings.replace(db_statement_timeout=1)
    pool = Database(impatient, for_requests=True).open()  # what create_app makes without db
    client = webtest.TestApp(create_app(impatient, db=pool, redis_client=make_redis(impatient)))
    ticket = {"name": "Cleo", "email": "cleo@example.com", "subject": "Help", "body": "Hi"}
    try:
        client.post_json("/api/tickets", ticket, status=201)  # the month's counter exists
        answers: list = []
        request = threading.Thread(
            target=lambda: answers.append(client.post_json("/api/tickets", ticket, status="*"))
        )
        with db.transaction() as conn:
            conn.execute("SELECT * FROM pid_counters FOR UPDATE")
            started = time.monotonic()
            request.start()
            request.join(5)  # without the limit it would wait for this lock for ever
            waited = time.monotonic() - started
        request.join()
        assert answers[0].status_int == 503
        assert answers[0].json["error"]["code"] == "service_unavailable"
        assert 1 <= waited < 5
        with pool.transaction() as conn:
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "1s"
        with db.transaction() as conn:  # the worker's, the CLI's: not bound
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
    finally:
        pool.close()
