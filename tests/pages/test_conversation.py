"""The ticket page as a conversation: sides, notes, safe bodies, the reply box without JS."""

from __future__ import annotations

import pytest
import webtest

from tests.factories import make_message, make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


@pytest.fixture
def ticket(db):
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_name="Cleo Customer")
        make_message(conn, ticket["id"], body="Tray 2 jams.\nSee https://example.org/jam).")
    return ticket


@pytest.fixture
def admin(make_staff, browser):
    user = make_staff("ADMIN", name="Ana Admin", email="ana@example.com")
    log_in(browser, "ana@example.com")
    return user


def test_the_conversation_shows_sides_notes_senders_and_times(browser, admin, ticket, db):
    with db.transaction() as conn:
        make_message(
            conn,
            ticket["id"],
            author="STAFF",
            author_user_id=admin["id"],
            author_email="ana@example.com",
            body="We are looking.",
        )
        make_message(
            conn,
            ticket["id"],
            author="STAFF",
            author_user_id=admin["id"],
            author_email="ana@example.com",
            visibility="INTERNAL",
            body="Old printer.",
        )
    page = browser.get(f"/tickets/{ticket['pid']}")
    articles = page.html.select("section.thread article.message")
    assert [a["class"] for a in articles] == [
        ["message", "from-customer"],
        ["message", "from-staff"],
        ["message", "from-staff", "internal"],
    ]
    assert [a.header.strong.text for a in articles] == ["Cleo Customer", "Ana Admin", "Ana Admin"]
    assert "Internal note" in articles[2].header.text
    assert all(a.header.time["datetime"] for a in articles)


def test_bodies_are_escaped_text_with_clickable_links(browser, admin, ticket, db):
    with db.transaction() as conn:
        make_message(
            conn,
            ticket["id"],
            body="<script>alert(1)</script><img src=x onerror=alert(2)> "
            "javascript:alert(3) https://example.org/a?b=1&c=2",
        )
    page = browser.get(f"/tickets/{ticket['pid']}")
    bodies = page.html.select(".message-body")
    assert bodies[0].text == "Tray 2 jams.\nSee https://example.org/jam)."
    [link] = bodies[0].find_all("a")
    assert link["href"] == "https://example.org/jam"
    assert "noopener" in link["rel"]
    hostile = bodies[1]
    assert hostile.find("script") is None
    assert hostile.find("img") is None
    assert "<script>alert(1)</script>" in hostile.text
    assert [a["href"] for a in hostile.find_all("a")] == ["https://example.org/a?b=1&c=2"]
    assert "<script>alert(1)" not in page.text  # escaped in the HTML source itself


def test_a_reply_from_the_page_without_javascript(browser, admin, ticket, db):
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    form["body"] = "We ordered a new tray."
    done = form.submit()
    assert done.status_int == 303
    assert done.headers["Location"].startswith(f"/tickets/{ticket['pid']}?notice=replied#message-")
    shown = done.follow()
    assert "Reply sent: the customer is emailed." in shown.text
    last = shown.html.select("section.thread article.message")[-1]
    assert last.select_one(".message-body").text == "We ordered a new tray."
    assert shown.html.select_one(".facts").text.count("In progress") == 1
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT kind::text, channel::text FROM email_outbox, ticket_messages "
            "WHERE ticket_messages.id = email_outbox.ticket_message_id"
        ).fetchone()
    assert row == ("REPLY", "WEB")


def test_a_note_and_a_status_from_the_page(browser, admin, ticket, db):
    form = form_with_action(
        browser.get(f"/tickets/{ticket['pid']}"), f"/tickets/{ticket['pid']}/messages"
    )
    form["body"] = "Waiting for the vendor."
    form["internal"] = True
    form["status"] = "WAITING"
    shown = form.submit().follow()
    assert "Internal note added." in shown.text
    last = shown.html.select("section.thread article.message")[-1]
    assert "internal" in last["class"]
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM email_outbox").fetchone() == (0,)
        assert conn.execute("SELECT status::text FROM tickets").fetchone() == ("WAITING",)


def test_an_empty_reply_is_refused_and_the_form_keeps_the_choices(browser, admin, ticket, db):
    form = form_with_action(
        browser.get(f"/tickets/{ticket['pid']}"), f"/tickets/{ticket['pid']}/messages"
    )
    form["body"] = "   "
    form["internal"] = True
    form["status"] = "RESOLVED"
    retry = form.submit(status=422)
    assert retry.html.select_one("#reply-body-error").text == "Write a message."
    again = form_with_action(retry, f"/tickets/{ticket['pid']}/messages")
    assert again["internal"].checked
    assert again["status"].value == "RESOLVED"
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ticket_messages").fetchone() == (1,)


def test_the_page_says_when_someone_wrote_while_you_were_typing(browser, admin, ticket, db):
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    with db.transaction() as conn:  # the customer answers meanwhile
        make_message(conn, ticket["id"], body="Never mind, it works now!")
    form["body"] = "Try turning it off and on."
    shown = form.submit().follow()
    warning = shown.html.select_one(".alert.warn").text
    assert "1 new message arrived while you were writing" in warning
    bodies = [b.text for b in shown.html.select(".message-body")]
    assert bodies[-2:] == ["Never mind, it works now!", "Try turning it off and on."]


def test_an_agent_cannot_reply_to_a_ticket_not_assigned_to_it(browser, make_staff, ticket, db):
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets")  # any page, for the session's CSRF token
    token = page.html.find("meta", attrs={"name": "csrf-token"})["content"]
    browser.post(
        f"/tickets/{ticket['pid']}/messages", {"csrf_token": token, "body": "Hi"}, status=404
    )
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ticket_messages").fetchone() == (1,)
