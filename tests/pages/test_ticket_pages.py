"""The public form, the ticket list and the ticket page, as a browser uses them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import webtest

from tests.conftest import STAFF_PASSWORD
from tests.factories import first_ticket_pid, make_message, make_ticket


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def log_in(browser, email):
    form = browser.get("/login").forms[0]
    form["email"] = email
    form["password"] = STAFF_PASSWORD
    form.submit()


def form_with_action(page, action):
    return next(f for f in page.forms.values() if f.action == action)


# --- the public form -------------------------------------------------------------------------


def test_public_form_round_trip_with_a_validation_error_first(browser, db):
    page = browser.get("/")
    form = form_with_action(page, "/")
    form["name"] = "Cleo Customer"
    form["email"] = "cleo at example"
    form["subject"] = "Printer jams"
    form["body"] = "Tray 2 jams.\nEvery time."
    form["priority"] = "HIGH"
    retry = form.submit(status=422)
    assert "Enter a valid email address" in retry.text
    form = form_with_action(retry, "/")
    # What the user typed is kept.
    assert form["name"].value == "Cleo Customer"
    assert form["subject"].value == "Printer jams"
    assert form["body"].value == "Tray 2 jams.\nEvery time."
    assert form["priority"].value == "HIGH"
    assert form["email"].value == "cleo at example"
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)

    form["email"] = "cleo@example.org"
    done = form.submit()
    assert done.status_int == 303
    confirmation = done.follow()
    with db.transaction() as conn:
        pid = first_ticket_pid(conn)
    assert confirmation.html.find(id="pid").text == pid
    assert "What happens next" in confirmation.text
    with db.transaction() as conn:
        row = conn.execute("SELECT channel, priority, requester_email FROM tickets").fetchone()
        emails = conn.execute("SELECT to_address FROM email_outbox").fetchall()
    assert row == ("WEB", "HIGH", "cleo@example.org")
    assert emails == [("cleo@example.org",)]


def test_confirmation_link_cannot_be_forged(browser, db):
    form = form_with_action(browser.get("/"), "/")
    for field, value in {
        "name": "Cleo",
        "email": "cleo@example.org",
        "subject": "Hi",
        "body": "Hello",
    }.items():
        form[field] = value
    location = form.submit().headers["Location"]
    query = parse_qs(urlsplit(location).query)
    browser.get(location)
    other_pid = query["pid"][0][:-1] + "2"
    browser.get(f"/submitted?pid={other_pid}&sig={query['sig'][0]}", status=404)
    browser.get(f"/submitted?pid={query['pid'][0]}", status=404)


def test_staff_opens_a_ticket_on_behalf_from_the_public_form(browser, make_staff, db):
    agent = make_staff("AGENT", email="bo@example.com", name="Bo")
    log_in(browser, "bo@example.com")
    page = browser.get("/")
    assert "on the customer's behalf" in page.text
    form = form_with_action(page, "/")
    for field, value in {
        "name": "Cleo",
        "email": "cleo@example.org",
        "subject": "Phone call",
        "body": "Customer called about the invoice.",
    }.items():
        form[field] = value
    form.submit().follow()
    with db.transaction() as conn:
        assert conn.execute("SELECT actor_id FROM ticket_events").fetchone() == (agent["id"],)


# --- the list ----------------------------------------------------------------------------------


@pytest.fixture
def many(db, make_staff):
    ana = make_staff("ADMIN", email="ana@example.com", name="Ana")
    bo = make_staff("AGENT", email="bo@example.com", name="Bo")
    base = datetime.now(UTC) - timedelta(days=30)
    with db.transaction() as conn:
        tickets = [
            make_ticket(
                conn,
                now=base + timedelta(hours=i),
                subject=f"Issue number {i:02d}",
                status="OPEN" if i % 2 == 0 else "WAITING",
                assigned_to=bo["id"] if i % 3 == 0 else None,
            )
            for i in range(30)
        ]
    return {"ana": ana, "bo": bo, "tickets": tickets}


def rows(page):
    return [tr.find_all("td")[1].text.strip() for tr in page.html.select("table.tickets tbody tr")]


def test_list_with_filters_and_pagination_that_keeps_them(browser, many):
    log_in(browser, "ana@example.com")
    page = browser.get("/tickets")
    assert len(rows(page)) == 25
    assert rows(page)[0] == "Issue number 29"  # newest first
    assert "30 tickets" in page.text

    form = form_with_action(page, "/tickets")
    form["status"] = "OPEN"
    filtered = form.submit()
    assert rows(filtered) == [f"Issue number {i:02d}" for i in range(28, -1, -2)]
    assert "15 tickets" in filtered.text
    # The form shows the filter in force.
    assert form_with_action(filtered, "/tickets")["status"].value == "OPEN"

    small = browser.get("/tickets?status=OPEN&per_page=10")
    next_link = small.html.find("a", rel="next")["href"]
    assert parse_qs(urlsplit(next_link).query) == {
        "status": ["OPEN"],
        "page": ["2"],
        "per_page": ["10"],
    }
    second = browser.get(next_link)
    assert rows(second) == [f"Issue number {i:02d}" for i in range(8, -1, -2)]
    assert "page 2 of 2" in second.text
    assert second.html.find("a", rel="next") is None
    prev = second.html.find("a", rel="prev")["href"]
    assert parse_qs(urlsplit(prev).query)["status"] == ["OPEN"]


def test_list_columns(browser, many):
    log_in(browser, "ana@example.com")
    page = browser.get("/tickets?q=number+27")
    (row,) = page.html.select("table.tickets tbody tr")
    cells = [td.get_text(" ", strip=True) for td in row.find_all("td")]
    assert cells[0] == many["tickets"][27]["pid"]
    assert cells[1] == "Issue number 27"
    assert cells[3] == "Waiting"
    assert cells[4] == "Normal"
    assert cells[5] == "Bo"
    assert cells[6].endswith(" d")


def test_agent_list_shows_only_its_tickets(browser, many):
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets?per_page=100")
    assert sorted(rows(page)) == sorted(f"Issue number {i:02d}" for i in range(0, 30, 3))


def test_an_agent_never_sees_the_staff_directory(browser, many, make_staff):
    """Issue 18, finding 12: GET /api/users is 403 for an AGENT, and no page of its own
    lists its colleagues either: the list's assignee filter offers only itself."""
    make_staff("AGENT", email="cyrilla.colleague@example.com", name="Cyrilla Colleague")
    make_staff("SUB_ADMIN", email="sigmund.sub@example.com", name="Sigmund Subadmin")
    log_in(browser, "bo@example.com")
    pages = [
        browser.get("/tickets"),
        browser.get("/tickets?status=OPEN&assigned_to=none"),
        browser.get("/tickets?q=a", status=422),  # the list again, with the error
        browser.get(f"/tickets/{many['tickets'][0]['pid']}"),  # its own ticket
        browser.get("/account/password"),
    ]
    for page in pages:
        for other in ("Cyrilla Colleague", "cyrilla.colleague@", "Sigmund", "ana@example.com"):
            assert other not in page.text, (page.request.url, other)
    choices = form_with_action(pages[0], "/tickets")["assigned_to"].options
    assert [label for _, _, label in choices] == ["Anyone", "Me"]


def test_a_manager_filters_the_list_by_any_colleague(browser, many, make_staff):
    make_staff("AGENT", email="cyrilla.colleague@example.com", name="Cyrilla Colleague")
    log_in(browser, "ana@example.com")
    choices = form_with_action(browser.get("/tickets"), "/tickets")["assigned_to"].options
    labels = [label for _, _, label in choices]
    assert labels[:3] == ["Anyone", "Me", "Unassigned"]
    assert {"Ana", "Bo", "Cyrilla Colleague"} <= set(labels[3:])


def test_empty_states(browser, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    assert "No tickets yet" in browser.get("/tickets").text
    assert "No tickets match these filters" in browser.get("/tickets?status=CLOSED").text


def test_bad_filter_is_explained_on_the_page(browser, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    page = browser.get("/tickets?q=a", status=422)
    assert "Search for a ticket number, an email address or at least 2 characters" in page.text


# --- the ticket page -----------------------------------------------------------------------


def test_ticket_page_shows_header_thread_and_timeline(browser, many, db):
    ticket = many["tickets"][0]
    with db.transaction() as conn:
        make_message(conn, ticket["id"], body="First line\n<b>not bold</b>")
    log_in(browser, "ana@example.com")
    page = browser.get(f"/tickets/{ticket['pid']}")
    assert ticket["subject"] in page.html.find("h1").text
    assert page.html.find(id="assignee").text == "Bo"
    body = page.html.select_one(".message .message-body")
    assert body.text == "First line\n<b>not bold</b>"  # shown as text, never as HTML
    assert "<b>not bold</b>" not in page.text


def test_assignment_form_assigns_and_the_timeline_says_so(browser, many, db):
    ticket = many["tickets"][1]  # unassigned
    log_in(browser, "ana@example.com")
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}/assign")
    options = {label.split(" · ")[0]: value for value, _, label in form["user_id"].options}
    assert set(options) == {"Nobody (unassigned)", "Ana", "Bo"}
    form["user_id"] = options["Bo"]
    after = form.submit().follow()
    assert "Assignment saved." in after.text
    assert after.html.find(id="assignee").text == "Bo"
    timeline = [li.span.text for li in after.html.select(".timeline li")]
    assert timeline[-1] == "Ana assigned this to Bo"
    with db.transaction() as conn:
        assert conn.execute("SELECT to_address FROM email_outbox").fetchall() == [
            ("bo@example.com",)
        ]


def test_agent_sees_no_assignment_form(browser, many):
    log_in(browser, "bo@example.com")
    page = browser.get(f"/tickets/{many['tickets'][0]['pid']}")
    assert f"/tickets/{many['tickets'][0]['pid']}/assign" not in page.text


def test_status_form_changes_status(browser, many):
    ticket = many["tickets"][0]
    log_in(browser, "bo@example.com")
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}")
    form["status"] = "RESOLVED"
    after = form.submit().follow()
    assert "Saved." in after.text
    timeline = [li.span.text for li in after.html.select(".timeline li")]
    assert timeline[-1] == "Status: Open → Resolved"


def test_agent_gets_a_404_page_for_someone_elses_ticket(browser, many):
    log_in(browser, "bo@example.com")
    page = browser.get(f"/tickets/{many['tickets'][1]['pid']}", status=404)
    assert "No such ticket." in page.text
    assert many["tickets"][1]["subject"] not in page.text


def test_a_form_posted_after_the_session_ended_returns_to_its_page(browser, many, db):
    """The assignment form cannot be replayed after login; the browser returns to the
    ticket page it was on instead of a POST-only URL."""
    ticket = many["tickets"][1]
    page_url = f"http://localhost/tickets/{ticket['pid']}"
    resp = browser.post(
        f"/tickets/{ticket['pid']}/assign", {"user_id": ""}, headers={"Referer": page_url}
    )
    assert resp.status_int == 303
    assert resp.headers["Location"] == f"/login?next=%2Ftickets%2F{ticket['pid']}"
    # A foreign Referer is not followed.
    other = browser.post(
        f"/tickets/{ticket['pid']}/assign",
        {"user_id": ""},
        headers={"Referer": "https://evil.example/x"},
    )
    assert other.headers["Location"] == "/login?next=%2Ftickets"


# --- a deactivated assignee (issue 10, finding 7) -----------------------------------------------


def test_a_deactivated_assignee_is_shown_and_kept_not_silently_dropped(browser, db, make_staff):
    """The dialog preselected "Nobody" for a deactivated assignee, so saving it unassigned."""
    make_staff("ADMIN", email="ana@example.com")
    bo = make_staff("AGENT", name="Bo Agent", is_active=False)
    with db.transaction() as conn:
        ticket = make_ticket(conn, assigned_to=bo["id"])
        make_ticket(conn, assigned_to=bo["id"], status="CLOSED")  # not open: not counted
    log_in(browser, "ana@example.com")
    page = browser.get(f"/tickets/{ticket['pid']}")
    assert "deactivated" in page.html.find(id="assignee").text
    form = form_with_action(page, f"/tickets/{ticket['pid']}/assign")
    assert form["user_id"].value == str(bo["id"])
    form.submit(status=303)  # saved as it was shown: nothing changes
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT assigned_to, (SELECT count(*) FROM ticket_events WHERE ticket_id = t.id "
            "AND type IN ('ASSIGNED', 'UNASSIGNED')) FROM tickets t WHERE id = %s",
            (ticket["id"],),
        ).fetchone()
    assert row == (bo["id"], 0)
    # Choosing "Nobody" on purpose still unassigns.
    form["user_id"] = ""
    form.submit(status=303)
    with db.transaction() as conn:
        assert conn.execute(
            "SELECT assigned_to FROM tickets WHERE id = %s", (ticket["id"],)
        ).fetchone() == (None,)


def test_the_staff_pages_say_what_a_deactivation_leaves_assigned(browser, db, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    bo = make_staff("AGENT", name="Bo Agent")
    with db.transaction() as conn:
        for status in ("OPEN", "WAITING", "RESOLVED"):
            make_ticket(conn, assigned_to=bo["id"], status=status)
    log_in(browser, "ana@example.com")
    edit = browser.get(f"/users/{bo['id']}")
    assert "2 open tickets are assigned to Bo Agent. Deactivating leaves them assigned" in (
        " ".join(edit.text.split())
    )
    form = form_with_action(edit, f"/users/{bo['id']}")
    form["is_active"] = False
    after = form.submit(status=303).follow()
    assert "Deactivated, with 2 open tickets still assigned" in " ".join(after.text.split())
    staff = browser.get("/users")
    link = staff.html.find("a", href=f"/tickets?assigned_to={bo['id']}")
    assert link.text == "2 open tickets still assigned"


def test_every_page_has_a_favicon_and_the_pid_never_wraps(browser, many, client):
    """Issue 11: a 404 for the favicon on every page; the PID column wrapped."""
    log_in(browser, "ana@example.com")
    page = browser.get("/tickets")
    icon = page.html.find("link", rel="icon")["href"]
    assert client.get(icon).content_type == "image/svg+xml"
    assert page.html.select("table.tickets td.ticket-number a")
    css = client.get("/static/app.css").text
    assert "td.ticket-number { white-space: nowrap;" in css
