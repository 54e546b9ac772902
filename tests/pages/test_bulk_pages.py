"""The list page's bulk form, the Mark as spam button and the Blocked senders page (issue
22 parts 7-8): plain forms with the CSRF token, no JavaScript needed."""

from __future__ import annotations

import pytest
import webtest

from tests.conftest import shared_app
from tests.factories import make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in
from tests.webhook import rows as query


@pytest.fixture
def browser(settings, db) -> webtest.TestApp:
    app = shared_app(settings, db)
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


@pytest.fixture
def desk(db, make_staff):
    ana = make_staff("ADMIN", email="ana@example.com", name="Ana")
    bo = make_staff("AGENT", email="bo@example.com", name="Bo")
    with db.transaction() as conn:
        bos = [make_ticket(conn, assigned_to=bo["id"], subject=f"Bo's {n}") for n in range(3)]
        closed = make_ticket(conn, assigned_to=bo["id"], status="CLOSED", subject="Done")
    return {"ana": ana, "bo": bo, "bos": bos, "closed": closed}


def _statuses(db) -> dict[str, str]:
    return {r["pid"]: r["status"] for r in query(db, "SELECT pid, status::text FROM tickets")}


def test_ticked_rows_change_and_the_summary_says_how_many(browser, db, desk):
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets?status=OPEN")
    form = form_with_action(page, "/tickets/bulk")
    assert form["csrf_token"].value
    first, second, _ = desk["bos"]
    for field in form.fields["pids"]:
        if field._value in (first["pid"], second["pid"]):
            field.checked = True
    form["change"] = "status:RESOLVED"
    after = form.submit(status=303)
    assert after.headers["Location"].startswith("/tickets?status=OPEN&")
    listed = after.follow()
    assert listed.html.find(id="bulk-summary").text.strip() == "Bulk action: 2 changed."
    statuses = _statuses(db)
    assert [statuses[t["pid"]] for t in desk["bos"]] == ["RESOLVED", "RESOLVED", "OPEN"]


def test_all_on_this_page_without_javascript(browser, db, desk):
    log_in(browser, "bo@example.com")
    form = form_with_action(browser.get("/tickets"), "/tickets/bulk")
    form["all"] = True
    form["change"] = "status:CLOSED"
    listed = form.submit(status=303).follow()
    # The three open ones change; the closed one was already so.
    summary = listed.html.find(id="bulk-summary").text.strip()
    assert summary == "Bulk action: 3 changed, 1 already so."
    assert set(_statuses(db).values()) == {"CLOSED"}


def test_nothing_ticked_is_said_on_the_list(browser, desk):
    log_in(browser, "bo@example.com")
    form = form_with_action(browser.get("/tickets"), "/tickets/bulk")
    form["change"] = "status:CLOSED"
    refused = form.submit(status=422)
    assert "Tick one or more tickets first." in refused.text
    assert refused.html.select("table.tickets tbody tr")  # the list is shown again


def test_an_agent_is_not_offered_assignment(browser, desk):
    log_in(browser, "bo@example.com")
    options = [
        v
        for v, _, _ in form_with_action(browser.get("/tickets"), "/tickets/bulk")["change"].options
    ]
    assert "assign:none" not in options
    assert "spam:" in options


def test_a_forged_summary_link_shows_nothing(browser, desk):
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets?bulk=changed-1.<script>-2")
    assert page.html.find(id="bulk-summary") is None


def test_mark_as_spam_button_then_unblock_on_the_blocked_senders_page(browser, db, desk):
    log_in(browser, "ana@example.com")
    pid = desk["bos"][0]["pid"]
    page = browser.get(f"/tickets/{pid}")
    after = form_with_action(page, f"/tickets/{pid}/spam").submit(status=303).follow()
    assert "Marked as spam" in after.text
    assert _statuses(db)[pid] == "CLOSED"
    requester = desk["bos"][0]["requester_email"]
    blocked = browser.get("/blocked-senders")
    assert requester in blocked.text
    assert blocked.html.select_one('nav a[href="/blocked-senders"]')["aria-current"] == "page"
    [row] = query(db, "SELECT id FROM blocked_senders")
    form_with_action(blocked, f"/blocked-senders/{row['id']}/delete").submit(status=303)
    assert query(db, "SELECT id FROM blocked_senders") == []


def test_the_blocked_senders_page_adds_and_refuses(browser, db, desk):
    log_in(browser, "ana@example.com")
    form = form_with_action(browser.get("/blocked-senders"), "/blocked-senders")
    form["pattern"] = "@Spam.Example"
    page = form.submit(status=303).follow()
    assert "@spam.example" in page.text
    form = form_with_action(page, "/blocked-senders")
    form["pattern"] = "@spam.example"
    refused = form.submit(status=409)
    assert "Already blocked." in refused.text
    form = form_with_action(refused, "/blocked-senders")
    form["pattern"] = "not a pattern"
    refused = form.submit(status=422)
    assert refused.html.find(id="pattern")["aria-invalid"] == "true"
