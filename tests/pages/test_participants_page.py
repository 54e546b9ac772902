"""The ticket page's "Copied (Cc)" box and the reply box's Cc field (DESIGN.md section 11):
plain forms with the CSRF token, working without JavaScript."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import webtest

from tests.factories import make_message, make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in

DANA = "dana@example.org"


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


@pytest.fixture
def ticket(db):
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_email="fay@example.org", requester_name="Fay")
        make_message(conn, ticket["id"], body="The scanner is offline.")
        conn.execute(
            "INSERT INTO ticket_participants (ticket_id, email, name, added_at) "
            "VALUES (%s, %s, 'Dana Doe', %s)",
            (ticket["id"], DANA, datetime.now(UTC)),
        )
    return ticket


@pytest.fixture
def admin(make_staff, browser):
    user = make_staff("ADMIN", name="Ana Admin", email="ana@example.com")
    log_in(browser, "ana@example.com")
    return user


def _copied(page) -> list[str]:
    box = page.html.find(id="copied")
    return [" ".join(li.span.text.split()) for li in box.find_all("li")]


def _replies(db) -> list[tuple[str, list[str]]]:
    with db.transaction() as conn:
        return conn.execute(
            "SELECT to_address, cc_addresses FROM email_outbox WHERE kind = 'REPLY' ORDER BY id"
        ).fetchall()


def test_the_page_lists_who_is_copied_and_prefills_the_cc(browser, admin, ticket):
    page = browser.get(f"/tickets/{ticket['pid']}")
    assert _copied(page) == [f"Dana Doe <{DANA}>"]
    reply = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    assert reply["cc"].value == DANA


def test_copy_and_remove_from_the_page(browser, admin, ticket, db):
    pid = ticket["pid"]
    page = browser.get(f"/tickets/{pid}")
    form = form_with_action(page, f"/tickets/{pid}/participants")
    form["email"] = "Eli@Example.net"
    done = form.submit(status=303)
    assert done.headers["Location"].endswith("notice=copied#copied")
    page = done.follow()
    assert _copied(page) == [f"Dana Doe <{DANA}>", "<eli@example.net>"]
    assert "Ana Admin copied eli@example.net" in page.html.find(class_="timeline").text

    remove = next(
        f
        for f in page.forms.values()
        if f.action == f"/tickets/{pid}/participants/remove" and f["email"].value == DANA
    )
    page = remove.submit(status=303).follow()
    assert _copied(page) == ["<eli@example.net>"]
    assert "Ana Admin stopped copying dana@example.org" in page.html.find(class_="timeline").text


def test_a_refused_copy_shows_the_form_again_with_why(browser, admin, ticket, db):
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}/participants")
    form["email"] = "fay@example.org"
    refused = form.submit(status=422)
    assert "is the requester" in refused.html.find(id="copy-email-error").text
    assert form_with_action(refused, f"/tickets/{ticket['pid']}/participants")["email"].value == (
        "fay@example.org"
    )
    assert _copied(refused) == [f"Dana Doe <{DANA}>"]


def test_removing_someone_not_copied_is_a_404_page(browser, admin, ticket):
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}/participants/remove")
    form["email"].force_value("nobody@example.org")
    form.submit(status=404)


def test_a_reply_with_the_cc_as_shown_goes_to_the_participants(browser, admin, ticket, db):
    page = browser.get(f"/tickets/{ticket['pid']}")
    reply = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    reply["body"] = "On it."
    reply.submit(status=303)
    assert _replies(db) == [("fay@example.org", [DANA])]


def test_a_changed_cc_replaces_the_participants(browser, admin, ticket, db):
    page = browser.get(f"/tickets/{ticket['pid']}")
    reply = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    reply["body"] = "Copying Eli instead."
    reply["cc"] = "eli@example.net; gus@example.org"
    page = reply.submit(status=303).follow()
    assert _copied(page) == ["<eli@example.net>", "<gus@example.org>"]
    assert _replies(db) == [("fay@example.org", ["eli@example.net", "gus@example.org"])]


def test_a_cc_left_as_shown_keeps_one_copied_meanwhile(browser, admin, ticket, db):
    """Someone was copied by email while the reply was being written: a Cc field left as
    the page showed it changes nothing, so they stay copied and get the reply."""
    page = browser.get(f"/tickets/{ticket['pid']}")
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO ticket_participants (ticket_id, email, name, added_at) "
            "VALUES (%s, 'new@example.net', '', %s)",
            (ticket["id"], datetime.now(UTC)),
        )
    reply = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    reply["body"] = "On it."
    reply.submit(status=303)
    assert _replies(db) == [("fay@example.org", [DANA, "new@example.net"])]


def test_a_refused_cc_keeps_the_reply_as_typed(browser, admin, ticket, db):
    page = browser.get(f"/tickets/{ticket['pid']}")
    reply = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    reply["body"] = "Copying the requester?"
    reply["cc"] = "fay@example.org"
    refused = reply.submit(status=422)
    assert "is the requester" in refused.html.find(id="reply-cc-error").text
    again = form_with_action(refused, f"/tickets/{ticket['pid']}/messages")
    assert (again["body"].value, again["cc"].value) == ("Copying the requester?", "fay@example.org")
    assert _replies(db) == []


def test_a_note_leaves_the_participants_alone(browser, admin, ticket, db):
    page = browser.get(f"/tickets/{ticket['pid']}")
    reply = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    reply["body"] = "Internal."
    reply["internal"] = True
    reply["cc"] = ""
    page = reply.submit(status=303).follow()
    assert _copied(page) == [f"Dana Doe <{DANA}>"]
