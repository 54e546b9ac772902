"""The Outbox for an ADMIN: deliveries by status, a retry for DEAD ones; /healthz's email."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import webtest

from supportdesk.mail.outbound.outbox import EMAIL_QUEUE
from supportdesk.mail.outbound.queue import WORKERS, heartbeat_key
from tests.factories import make_outbox, make_ticket
from tests.pages.test_ticket_pages import log_in


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", email="ana@example.com")


@pytest.fixture
def deliveries(db):
    with db.transaction() as conn:
        ticket = make_ticket(conn)
        rows = {
            "sent": make_outbox(
                conn, ticket_id=ticket["id"], status="SENT", attempts=1, sent_at=datetime.now(UTC)
            ),
            "retrying": make_outbox(
                conn,
                status="FAILED",
                attempts=2,
                last_error="451 busy",
                next_attempt_at=datetime.now(UTC) + timedelta(minutes=1),
            ),
            "dead": make_outbox(
                conn,
                ticket_id=ticket["id"],
                status="DEAD",
                attempts=8,
                last_error="550 5.1.1 No such user",
            ),
            "pending": make_outbox(conn),
        }
    return ticket, rows


def test_the_list_by_status_with_attempts_and_errors(client, bearer, admin, deliveries):
    ticket, _rows = deliveries
    everything = client.get("/api/outbox", headers=bearer(admin)).json
    assert [d["id"] for d in everything["items"]] == [4, 3, 2, 1]  # newest first
    assert everything["counts"] == {"PENDING": 1, "SENDING": 0, "SENT": 1, "FAILED": 1, "DEAD": 1}
    assert everything["total"] == 4
    assert not everything["total_capped"]
    dead = client.get("/api/outbox?status=dead", headers=bearer(admin)).json
    [item] = dead["items"]
    assert item["ticket"] == ticket["pid"]
    assert item["status"] == "DEAD"
    assert item["attempts"] == 8
    assert item["last_error"] == "550 5.1.1 No such user"
    assert dead["total"] == 1


@pytest.mark.parametrize("query", ["status=LOST", "page=0", "per_page=101", "status=a&status=b"])
def test_bad_filters_are_a_422(client, bearer, admin, query):
    resp = client.get(f"/api/outbox?{query}", headers=bearer(admin), status=422)
    assert resp.json["error"]["code"] == "validation_error"


def test_retrying_a_dead_delivery_queues_it_again(
    client, bearer, admin, deliveries, db, redis_client
):
    _, rows = deliveries
    dead_id = rows["dead"]["id"]
    resp = client.post(f"/api/outbox/{dead_id}/retry", headers=bearer(admin))
    assert resp.json["delivery"]["status"] == "PENDING"
    assert resp.json["delivery"]["attempts"] == 0
    assert resp.json["delivery"]["last_error"] == "550 5.1.1 No such user"  # kept until sent
    assert redis_client.lrange(EMAIL_QUEUE, 0, -1) == [str(dead_id).encode()]


@pytest.mark.parametrize("which", ["sent", "retrying", "pending"])
def test_only_a_dead_delivery_can_be_retried(client, bearer, admin, deliveries, which):
    _, rows = deliveries
    resp = client.post(f"/api/outbox/{rows[which]['id']}/retry", headers=bearer(admin), status=409)
    assert resp.json["error"]["code"] == "conflict"


def test_retrying_an_unknown_delivery_is_404(client, bearer, admin, deliveries):
    client.post("/api/outbox/999/retry", headers=bearer(admin), status=404)


def test_the_outbox_page_and_its_retry_button(app, admin, deliveries, redis_client):
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    log_in(browser, "ana@example.com")
    page = browser.get("/outbox?status=DEAD")
    row = page.html.select_one("table.outbox tbody tr")
    assert "550 5.1.1 No such user" in row.text
    tabs = {a.text.split()[0]: a.select_one(".count").text for a in page.html.select(".tabs a")[1:]}
    assert tabs == {"Pending": "1", "Sending": "0", "Sent": "1", "Retrying": "1", "Failed": "1"}
    done = page.forms[next(k for k, f in page.forms.items() if "retry" in f.action)].submit()
    assert done.status_int == 303
    shown = done.follow()
    assert "is queued again" in shown.text
    assert shown.html.select_one("table.outbox") is None  # nothing DEAD any more
    assert redis_client.llen(EMAIL_QUEUE) == 1


def test_healthz_reports_the_oldest_pending_email_and_live_workers(client, db, redis_client):
    with db.transaction() as conn:
        make_outbox(conn, created_at=datetime.now(UTC) - timedelta(minutes=5))
        make_outbox(conn, status="DEAD", last_error="550")
    email = client.get("/healthz").json["email"]
    assert 299 <= email["oldest_pending_seconds"] < 330
    assert email["undelivered"] == 1
    assert email["dead"] == 1
    assert email["workers_alive"] == 0
    assert email["worker"] == "none alive"
    # A worker beating (registered, heartbeat key alive), and one whose heartbeat expired.
    redis_client.sadd(WORKERS, "alive", "gone")
    redis_client.set(heartbeat_key("alive"), "1", px=5000)
    email = client.get("/healthz").json["email"]
    assert email["workers_alive"] == 1
    assert email["worker"] == "ok"
