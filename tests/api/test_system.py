"""GET /healthz and GET /api/openapi.json."""

from __future__ import annotations

import re

import webtest
from openapi_spec_validator import validate

from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.dev.embedded import free_port
from supportdesk.web.app import create_app
from supportdesk.web.routes import ROUTES
from tests.conftest import shared_app


def test_healthz_is_ok_when_both_answer(client):
    resp = client.get("/healthz")
    assert resp.json["status"] == "ok"
    assert resp.json["checks"] == {"postgres": "ok", "redis": "ok"}
    # Nothing is waiting, and no worker runs in this test.
    assert resp.json["email"] == {
        "oldest_pending_seconds": None,
        "undelivered": 0,
        "dead": 0,
        "queued": 0,
        "retrying": 0,
        "workers_alive": 0,
        "worker": "none alive",
    }


def test_healthz_is_503_when_postgres_is_down(settings, redis_client):
    dead = settings.replace(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    db = Database(dead).open()
    try:
        client = webtest.TestApp(create_app(dead, db=db, redis_client=make_redis(settings)))
        resp = client.get("/healthz", status=503)
    finally:
        db.close()
    error = resp.json["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"postgres": "unavailable", "redis": "ok"}


def test_healthz_is_503_when_redis_is_down(settings, db):
    dead = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = webtest.TestApp(shared_app(dead, db))
    resp = client.get("/healthz", status=503)
    assert resp.json["error"]["details"] == {"postgres": "ok", "redis": "unavailable"}


def test_openapi_document_lists_every_api_route(client):
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    expected = {
        (re.sub(r"{(\w+):\w+}", r"{\1}", r.path), m)
        for r in ROUTES
        if r.in_api_doc
        for m in r.operations
    }
    assert documented == expected
    assert "Error" in doc["components"]["schemas"]


def test_openapi_document_is_valid_openapi_3_1(client):
    validate(client.get("/api/openapi.json").json)
