"""Notification preferences and following (DESIGN.md section 12), through the API and the
pages: what each answers, and what it refuses. Whom the notices reach, as delivered by the
worker, is in tests/worker/test_notifications.py."""

from __future__ import annotations

import pytest
import webtest

from supportdesk.tickets.notifications import mentioned_names
from tests.conftest import shared_app
from tests.factories import make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in
from tests.webhook import rows

ALL_ON = {"new_ticket": True, "customer_reply": True, "assigned": True, "mentioned": True}


@pytest.fixture
def api(settings, db, redis_client) -> webtest.TestApp:
    return webtest.TestApp(shared_app(settings, db))


@pytest.fixture
def bo(make_staff):
    return make_staff("AGENT", name="Bo Agent", email="bo@example.com")


def test_preferences_start_as_the_migration_says_and_are_replaced_whole(api, bo, bearer, db):
    me = bearer(bo)
    assert api.get("/api/me/notifications", headers=me).json == {
        "new_ticket": False,
        "customer_reply": True,
        "assigned": True,
        "mentioned": True,
    }
    wanted = {"new_ticket": True, "customer_reply": False, "assigned": False, "mentioned": True}
    assert api.put_json("/api/me/notifications", wanted, headers=me).json == wanted
    assert api.get("/api/me/notifications", headers=me).json == wanted
    [row] = rows(db, "SELECT notify_new_ticket, notify_assigned FROM users WHERE id = %s", bo["id"])
    assert row == {"notify_new_ticket": True, "notify_assigned": False}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"new_ticket": True}, {"customer_reply", "assigned", "mentioned"}),  # not all four
        (ALL_ON | {"assigned": "false"}, {"assigned"}),  # a string is not a boolean
        (ALL_ON | {"mentioned": 1}, {"mentioned"}),
        (ALL_ON | {"new_ticket": None}, {"new_ticket"}),
        (ALL_ON | {"digest": True}, {"digest"}),  # not a preference
        ({}, {"new_ticket", "customer_reply", "assigned", "mentioned"}),
    ],
)
def test_preferences_refuse_what_is_not_four_booleans(api, bo, bearer, body, fields):
    answer = api.put_json("/api/me/notifications", body, headers=bearer(bo), status=422).json
    assert answer["error"]["code"] == "validation_error"
    assert set(answer["error"]["details"]) == fields
    assert api.get("/api/me/notifications", headers=bearer(bo)).json["new_ticket"] is False


def test_preferences_refuse_a_body_that_is_not_an_object(api, bo, bearer):
    answer = api.put_json("/api/me/notifications", [True], headers=bearer(bo), status=400).json
    assert answer["error"]["code"] == "bad_request"


def test_following_is_idempotent_and_needs_access(api, bo, bearer, db, make_staff):
    cy = make_staff("AGENT", email="cy@example.com")
    with db.transaction() as conn:
        mine = make_ticket(conn, assigned_to=bo["id"])
        theirs = make_ticket(conn, assigned_to=cy["id"])
    url = f"/api/tickets/{mine['pid']}/follow"
    for _ in range(2):
        assert api.post(url, headers=bearer(bo)).json == {"following": True}
    assert rows(db, "SELECT user_id FROM ticket_followers") == [{"user_id": bo["id"]}]
    for _ in range(2):
        assert api.delete(url, headers=bearer(bo)).json == {"following": False}
    assert rows(db, "SELECT user_id FROM ticket_followers") == []
    # Another AGENT's ticket: not found, as everywhere, so that numbers do not leak.
    other = f"/api/tickets/{theirs['pid']}/follow"
    assert api.post(other, headers=bearer(bo), status=404).json["error"]["code"] == "not_found"
    api.post("/api/tickets/202601-99999/follow", headers=bearer(bo), status=404)
    assert rows(db, "SELECT user_id FROM ticket_followers") == []


def test_the_ticket_page_follows_and_unfollows_without_javascript(settings, db, bo, redis_client):
    with db.transaction() as conn:
        ticket = make_ticket(conn, assigned_to=bo["id"])
    app = shared_app(settings, db)
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    log_in(browser, "bo@example.com")
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}/follow")
    assert form.submit_fields()[-1] == ("follow", "yes")
    assert "Follow" in page.html.select_one('form[action$="/follow"] button').text
    page = form.submit().follow()
    assert "You follow this ticket" in page.text
    form = form_with_action(page, f"/tickets/{ticket['pid']}/follow")
    assert page.html.select_one('form[action$="/follow"] button').text.strip() == "Unfollow"
    assert rows(db, "SELECT user_id FROM ticket_followers") == [{"user_id": bo["id"]}]
    page = form.submit().follow()
    assert "You no longer follow this ticket" in page.text
    assert rows(db, "SELECT user_id FROM ticket_followers") == []


def test_the_notifications_page_saves_the_checkboxes(settings, db, bo, redis_client):
    app = shared_app(settings, db)
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets")
    page = browser.get(page.html.select_one('header a[href="/account/notifications"]')["href"])
    form = form_with_action(page, "/account/notifications")
    assert form["csrf_token"].value
    assert [form[n].checked for n in ALL_ON] == [False, True, True, True]
    form["new_ticket"].checked = True
    form["assigned"].checked = False  # a box not ticked is not sent: off
    page = form.submit().follow()
    assert "Saved." in page.text
    [row] = rows(
        db,
        "SELECT notify_new_ticket, notify_customer_reply, notify_assigned, notify_mentioned "
        "FROM users WHERE id = %s",
        bo["id"],
    )
    assert list(row.values()) == [True, True, False, True]
    assert "@bo" in page.text  # the page says how to be mentioned


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("@ana please look", ["ana"]),
        ("Thanks @Ana.", ["ana"]),
        ("@ana@example.com, and @ANA@Example.COM again", ["ana@example.com"]),
        ("(cc @bo) @cy-d:", ["bo", "cy-d"]),
        ("write to cleo@example.org", []),  # an address in a sentence mentions nobody
        ("an email@ana and a@@bo", []),
        ("@ alone, @@ and @.", []),
    ],
)
def test_mentions_are_read_from_the_text(text, names):
    assert mentioned_names(text) == names
