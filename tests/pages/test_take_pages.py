"""Taking tickets in the pages (DESIGN.md section 12): an AGENT's Unassigned view when the
desk lets it see the pile, and the Take button (a plain form, no JavaScript needed)."""

from __future__ import annotations

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.tickets.inputs import Assignment
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.factories import make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in, rows


def _browser(settings, db, agents_see_unassigned: bool) -> webtest.TestApp:
    current = settings.replace(agents_see_unassigned=agents_see_unassigned)
    app = shared_app(current, db)
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


@pytest.fixture
def desk(db, make_staff):
    ana = make_staff("ADMIN", email="ana@example.com", name="Ana")
    bo = make_staff("AGENT", email="bo@example.com", name="Bo")
    cy = make_staff("AGENT", email="cy@example.com", name="Cy")
    with db.transaction() as conn:
        tickets = {
            "bo's": make_ticket(conn, subject="Bo's own", assigned_to=bo["id"]),
            "open": make_ticket(conn, subject="Nobody's yet"),
            "cy's": make_ticket(conn, subject="Cy's own", assigned_to=cy["id"]),
        }
    return {"ana": ana, "bo": bo, "cy": cy, "tickets": tickets}


def test_an_agent_has_an_unassigned_view_when_it_sees_the_pile(settings, db, desk):
    browser = _browser(settings, db, True)
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets")
    assert sorted(rows(page)) == ["Bo's own", "Nobody's yet"]
    views = {a.text: a["href"] for a in page.html.select("nav.tabs a")}
    assert views == {
        "All": "/tickets",
        "Mine": "/tickets?assigned_to=me",
        "Unassigned": "/tickets?assigned_to=none",
    }
    unassigned = browser.get(views["Unassigned"])
    assert rows(unassigned) == ["Nobody's yet"]
    assert unassigned.html.select_one("nav.tabs a[aria-current]").text == "Unassigned"
    choices = form_with_action(page, "/tickets")["assigned_to"].options
    # The pile, but still no staff directory.
    assert [label for _, _, label in choices] == ["Anyone", "Me", "Unassigned"]


def test_without_the_setting_an_agent_has_no_unassigned_view(settings, db, desk):
    browser = _browser(settings, db, False)
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets")
    assert rows(page) == ["Bo's own"]
    assert page.html.select("nav.tabs") == []


def test_an_agent_takes_a_ticket_with_the_button(settings, db, desk):
    browser = _browser(settings, db, True)
    log_in(browser, "bo@example.com")
    pid = desk["tickets"]["open"]["pid"]
    page = browser.get(f"/tickets/{pid}")
    assert page.html.find(id="assignee").text == "Unassigned"
    assert "sending a reply to the customer takes it" in page.text
    form = form_with_action(page, f"/tickets/{pid}/take")
    assert form["csrf_token"].value
    after = form.submit(status=303).follow()
    assert "You took this ticket" in after.text
    assert after.html.find(id="assignee").text == "Bo"
    timeline = [li.span.text for li in after.html.select(".timeline li")]
    assert timeline[-1] == "Bo took this"
    # Its own now: no button, and it is in "Mine".
    assert f"/tickets/{pid}/take" not in after.text
    assert "Nobody's yet" in rows(browser.get("/tickets?assigned_to=me"))


def test_no_take_button_on_a_ticket_someone_has(settings, db, desk):
    browser = _browser(settings, db, True)
    log_in(browser, "ana@example.com")
    for key in ("bo's", "cy's"):
        pid = desk["tickets"][key]["pid"]
        assert f"/tickets/{pid}/take" not in browser.get(f"/tickets/{pid}").text
    pid = desk["tickets"]["open"]["pid"]
    page = browser.get(f"/tickets/{pid}")
    assert form_with_action(page, f"/tickets/{pid}/take")  # a manager takes the pile's too
    assert "sending a reply to the customer takes it" not in page.text  # not a manager's reply


@pytest.mark.parametrize(
    ("who", "status", "says"),
    [
        ("ana@example.com", 409, "Cy took this ticket first."),
        # Another's ticket is out of an AGENT's reach, and the page says no more than that.
        ("bo@example.com", 404, "No such ticket, or someone else has taken it since you saw it."),
    ],
)
def test_taken_by_someone_else_since_the_page_was_shown(settings, db, desk, who, status, says):
    """Never a silent takeover: the button was for a ticket nobody had."""
    browser = _browser(settings, db, True)
    log_in(browser, who)
    pid = desk["tickets"]["open"]["pid"]
    form = form_with_action(browser.get(f"/tickets/{pid}"), f"/tickets/{pid}/take")
    services = build_services(settings, db, make_redis(settings))
    services.assignment.assign(desk["ana"], pid, Assignment(desk["cy"]["id"]))
    refused = form.submit(status=status)
    assert says in refused.text
    assert "Nobody's yet" not in refused.text
    with db.transaction() as conn:
        [holder] = conn.execute("SELECT assigned_to FROM tickets WHERE pid = %s", (pid,)).fetchone()
    assert holder == desk["cy"]["id"]
