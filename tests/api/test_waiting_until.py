"""`waiting_until` (DESIGN.md section 12): PATCH sets it on a WAITING ticket (ISO 8601 with
offset, in the future), the ticket JSON and page show it, the page's status form sets it in
UTC, and a ticket that leaves WAITING stops waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import webtest

from tests.conftest import shared_app
from tests.factories import make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in
from tests.webhook import rows


@pytest.fixture
def waiting(db, make_staff):
    ana = make_staff("ADMIN", email="ana@example.com", name="Ana")
    with db.transaction() as conn:
        ticket = make_ticket(conn, status="WAITING", subject="Waiting on the customer")
        other = make_ticket(conn, status="OPEN", subject="Open one")
    return {"ana": ana, "ticket": ticket, "other": other}


def _later(**delta) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)


def _stored(db, ticket_id: int):
    [row] = rows(db, "SELECT status::text, waiting_until FROM tickets WHERE id = %s", ticket_id)
    return row["status"], row["waiting_until"]


def test_patch_sets_waiting_until_on_a_waiting_ticket(client, bearer, db, waiting):
    pid = waiting["ticket"]["pid"]
    moment = _later(days=2).astimezone(UTC)
    written = moment.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    resp = client.patch_json(
        f"/api/tickets/{pid}", {"waiting_until": written}, headers=bearer(waiting["ana"])
    )
    assert datetime.fromisoformat(resp.json["ticket"]["waiting_until"]) == moment
    assert _stored(db, waiting["ticket"]["id"]) == ("WAITING", moment)
    got = client.get(f"/api/tickets/{pid}", headers=bearer(waiting["ana"])).json["ticket"]
    assert datetime.fromisoformat(got["waiting_until"]) == moment
    # null clears it.
    resp = client.patch_json(
        f"/api/tickets/{pid}", {"waiting_until": None}, headers=bearer(waiting["ana"])
    )
    assert resp.json["ticket"]["waiting_until"] is None
    # Each change is an event on the timeline, with who did it; sending the same is none.
    client.patch_json(
        f"/api/tickets/{pid}", {"waiting_until": None}, headers=bearer(waiting["ana"])
    )
    timeline = client.get(f"/api/tickets/{pid}/events", headers=bearer(waiting["ana"])).json
    steps = [e for e in timeline["items"] if e["type"] == "WAITING_UNTIL_SET"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in steps] == [
        (None, moment.isoformat()),
        (moment.isoformat(), None),
    ]
    assert [e["actor"]["name"] for e in steps] == ["Ana", "Ana"]
    day = f"{moment.day} {moment:%b %Y %H:%M} UTC"
    assert [e["summary"] for e in steps] == [
        f"Ana set the wait until {day}, then Open again",
        f"Ana stopped the wait (it was set until {day})",
    ]


def test_status_waiting_and_a_moment_together(client, bearer, db, waiting):
    moment = _later(hours=5)
    resp = client.patch_json(
        f"/api/tickets/{waiting['other']['pid']}",
        {"status": "WAITING", "waiting_until": moment.isoformat()},
        headers=bearer(waiting["ana"]),
    )
    assert resp.json["ticket"]["status"] == "WAITING"
    assert _stored(db, waiting["other"]["id"]) == ("WAITING", moment)


def test_leaving_waiting_clears_the_moment(client, bearer, db, waiting):
    pid = waiting["ticket"]["pid"]
    headers = bearer(waiting["ana"])
    client.patch_json(
        f"/api/tickets/{pid}", {"waiting_until": _later(days=1).isoformat()}, headers=headers
    )
    resp = client.patch_json(f"/api/tickets/{pid}", {"status": "IN_PROGRESS"}, headers=headers)
    assert resp.json["ticket"]["waiting_until"] is None
    assert _stored(db, waiting["ticket"]["id"]) == ("IN_PROGRESS", None)


@pytest.mark.parametrize(
    ("body", "which"),
    [
        ({"waiting_until": "2099-01-01T09:00:00"}, "no offset"),
        ({"waiting_until": "tomorrow"}, "not a moment"),
        ({"waiting_until": 1893456000}, "a number"),
        ({"waiting_until": "2001-01-01T09:00:00+00:00"}, "in the past"),
        ({"status": "OPEN", "waiting_until": "2099-01-01T09:00:00+00:00"}, "not WAITING"),
    ],
)
def test_a_bad_waiting_until_is_422(client, bearer, db, waiting, body, which):
    resp = client.patch_json(
        f"/api/tickets/{waiting['ticket']['pid']}",
        body,
        headers=bearer(waiting["ana"]),
        status=422,
    )
    assert resp.json["error"]["code"] == "validation_error", which
    assert "waiting_until" in resp.json["error"]["details"], which
    assert _stored(db, waiting["ticket"]["id"]) == ("WAITING", None)


def test_a_moment_on_an_open_ticket_is_422(client, bearer, db, waiting):
    resp = client.patch_json(
        f"/api/tickets/{waiting['other']['pid']}",
        {"waiting_until": _later(days=1).isoformat()},
        headers=bearer(waiting["ana"]),
        status=422,
    )
    assert "WAITING" in resp.json["error"]["details"]["waiting_until"]
    assert _stored(db, waiting["other"]["id"]) == ("OPEN", None)


def test_the_ticket_schema_publishes_waiting_until(client):
    doc = client.get("/api/openapi.json").json
    ticket = doc["components"]["schemas"]["Ticket"]["properties"]
    assert ticket["waiting_until"]["type"] == ["string", "null"]
    change = doc["components"]["schemas"]["TicketChange"]["properties"]["waiting_until"]
    assert change["format"] == "date-time"


def test_the_page_sets_waiting_until_in_utc_and_shows_it(settings, db, waiting):
    browser = webtest.TestApp(
        shared_app(settings, db),
        extra_environ={"HTTP_ACCEPT": "text/html"},
    )
    log_in(browser, "ana@example.com")
    pid = waiting["ticket"]["pid"]
    page = browser.get(f"/tickets/{pid}")
    assert "Waiting until (UTC)" in page.text
    form = form_with_action(page, f"/tickets/{pid}")
    moment = _later(days=3).replace(second=0)
    form["waiting_until"] = moment.strftime("%Y-%m-%dT%H:%M")  # what datetime-local sends
    after = form.submit(status=303).follow()
    assert _stored(db, waiting["ticket"]["id"]) == ("WAITING", moment)
    shown = after.html.find(id="waiting-until").text
    assert moment.strftime("%d %b %Y %H:%M") + " UTC" in shown
    again = form_with_action(after, f"/tickets/{pid}")
    assert again["waiting_until"].value == moment.strftime("%Y-%m-%dT%H:%M")
    # A moment with another status is refused on the page too, and nothing changes.
    again["status"] = "OPEN"
    again["waiting_until"] = _later(days=4).strftime("%Y-%m-%dT%H:%M")
    refused = again.submit(status=422)
    assert "Only a WAITING ticket" in refused.text
    # Emptied, with Open: the ticket stops waiting.
    again["waiting_until"] = ""
    again.submit(status=303)
    assert _stored(db, waiting["ticket"]["id"]) == ("OPEN", None)
