"""The New email page: a staff member writes to a customer first, without JavaScript."""

from __future__ import annotations

import pytest
import webtest

from tests.oauthserver import insert_mailbox
from tests.pages.test_ticket_pages import form_with_action, log_in
from tests.webhook import rows


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def test_the_list_and_the_nav_link_to_the_page(browser, make_staff):
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    tickets = browser.get("/tickets")
    assert tickets.html.select('a[href="/tickets/new"]'), "no link to New email"
    page = tickets.click(href="/tickets/new", index=0)
    assert page.html.find("h1").text == "New email"
    assert page.html.select_one('nav a[href="/tickets/new"]')["aria-current"] == "page"


def test_an_email_sent_from_the_page_opens_the_ticket_and_shows_it(browser, db, make_staff):
    make_staff("AGENT", name="Bo Agent", email="bo@example.com")
    log_in(browser, "bo@example.com")
    form = form_with_action(browser.get("/tickets/new"), "/tickets/new")
    assert "mailbox_id" not in form.fields  # no mailboxes: MAIL_FROM, no select
    form["to"] = "Cleo Customer <cleo@example.org>"
    form["cc"] = "dan@example.net, Eve <eve@example.net>"
    form["subject"] = "Your order has shipped"
    form["body"] = "Hello Cleo,\nit left today."
    form["attachments"] = [webtest.Upload("label.pdf", b"%PDF-1.4\n%%EOF\n")]
    sent = form.submit(status=303)
    [ticket] = rows(db, "SELECT pid, status::text, requester_name FROM tickets")
    assert sent.headers["Location"] == f"/tickets/{ticket['pid']}?notice=emailed"
    assert (ticket["status"], ticket["requester_name"]) == ("WAITING", "Cleo Customer")

    page = sent.follow()
    assert "Email sent" in page.text
    assert "Bo Agent emailed Cleo Customer, opening this ticket" in page.text
    assert "it left today." in page.text
    assert "label.pdf" in page.text
    [email] = rows(db, "SELECT kind::text, to_address, cc_addresses FROM email_outbox")
    assert email == {
        "kind": "REPLY",
        "to_address": "cleo@example.org",
        "cc_addresses": ["dan@example.net", "eve@example.net"],
    }


def test_a_refused_email_comes_back_as_typed_with_the_errors_by_the_fields(browser, db, make_staff):
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    form = form_with_action(browser.get("/tickets/new"), "/tickets/new")
    form["to"] = "cleo at example"
    form["cc"] = "dan@example.net, nope"
    form["subject"] = ""
    form["body"] = "Hello Cleo."
    retry = form.submit(status=422)
    assert "Some fields need attention." in retry.text
    for name in ("to", "cc", "subject"):
        field = retry.html.find(id=name)
        assert field["aria-invalid"] == "true", name
        assert retry.html.find(id=f"{name}-error").text.strip(), name
    form = form_with_action(retry, "/tickets/new")
    assert (form["to"].value, form["cc"].value, form["body"].value) == (
        "cleo at example",
        "dan@example.net, nope",
        "Hello Cleo.",
    )
    assert rows(db, "SELECT id FROM tickets") == []
    assert rows(db, "SELECT id FROM email_outbox") == []


def test_the_mailbox_select_lists_the_active_mailboxes(browser, db, make_staff):
    with db.transaction() as conn:
        sales = insert_mailbox(conn, auth="PASSWORD", address="sales@acme.example")
        insert_mailbox(conn, auth="PASSWORD", address="old@acme.example", is_active=False)
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    form = form_with_action(browser.get("/tickets/new"), "/tickets/new")
    options = [value for value, _, _ in form["mailbox_id"].options]
    assert options == ["", str(sales["id"])]
    form["to"] = "cleo@example.org"
    form["subject"] = "Hi"
    form["body"] = "Hello."
    form["mailbox_id"] = str(sales["id"])
    form.submit(status=303)
    [email] = rows(db, "SELECT from_address, mailbox_id FROM email_outbox")
    assert email == {"from_address": "Acme Support <sales@acme.example>", "mailbox_id": sales["id"]}


def test_a_mailbox_turned_off_meanwhile_is_said_by_the_select(browser, db, make_staff):
    with db.transaction() as conn:
        sales = insert_mailbox(conn, auth="PASSWORD", address="sales@acme.example")
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    form = form_with_action(browser.get("/tickets/new"), "/tickets/new")
    form["to"] = "cleo@example.org"
    form["subject"] = "Hi"
    form["body"] = "Hello."
    form["mailbox_id"] = str(sales["id"])
    with db.transaction() as conn:
        conn.execute("UPDATE mailboxes SET is_active = false")
    retry = form.submit(status=422)
    assert "Choose an active mailbox." in retry.text
    assert rows(db, "SELECT id FROM email_outbox") == []


def test_the_page_needs_a_login(browser):
    resp = browser.get("/tickets/new", status=303)
    assert resp.headers["Location"].startswith("/login?next=")
