"""The customer's own view of a ticket, opened by the signed link of their emails."""

from __future__ import annotations

import re

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.tickets.inputs import Assignment, NewMessage, NewTicket, TicketChange
from supportdesk.web.services import build_services
from tests.api.test_attachments import PNG
from tests.clock import Clock
from tests.conftest import shared_app
from tests.factories import make_message

CLOCK = Clock()  # the module's, set back to now for each test


@pytest.fixture
def clock() -> Clock:
    return CLOCK.reset()


@pytest.fixture
def world(settings, db, redis_client, make_staff, clock):
    services = build_services(settings, db, make_redis(settings), clock=clock)
    app = shared_app(settings, db, clock=clock)
    admin = make_staff("ADMIN", name="Ana Admin")
    bo = make_staff("AGENT", name="Bo Agent", email="bo@example.com")
    ticket = services.tickets.create(
        NewTicket("Cleo Customer", "cleo@example.org", "Printer jams", "Tray 2.", "NORMAL"),
        channel="WEB",
    )
    services.assignment.assign(admin, ticket["pid"], Assignment(bo["id"]))
    services.messages.post(admin, ticket["pid"], NewMessage("Clean the rollers."), channel="API")
    services.messages.post(
        admin, ticket["pid"], NewMessage("VIP customer", "INTERNAL"), channel="API"
    )
    services.tickets.update(admin, ticket["pid"], TicketChange(status="RESOLVED"))
    with db.transaction() as conn:
        ack = conn.execute(
            "SELECT body_text FROM email_outbox WHERE kind = 'ACKNOWLEDGEMENT'"
        ).fetchone()[0]
    link = re.search(r"http://127\.0\.0\.1:8000(/t/\S+)", ack).group(1)
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    return {"ticket": ticket, "link": link, "browser": browser, "services": services}


def test_the_acknowledgement_links_the_customers_view(world):
    page = world["browser"].get(world["link"])
    assert world["ticket"]["subject"] in page.text
    assert page.html.select_one(".facts").text.count("Resolved") == 1
    bodies = [b.text for b in page.html.select(".message-body")]
    assert bodies == ["Tray 2.", "Clean the rollers."]  # never the internal note
    assert "VIP customer" not in page.text


def test_the_customer_replies_with_a_file_and_the_ticket_reopens(world, db):
    page = world["browser"].get(world["link"])
    form = page.forms["reply"]
    form["body"] = "It jams again."
    form["attachments"] = [webtest.Upload("jam.png", PNG, "image/png")]
    done = form.submit()
    assert done.status_int == 303
    shown = done.follow()
    assert "your message is with our team" in shown.text
    last = shown.html.select("article.message")[-1]
    assert last.select_one(".message-body").text == "It jams again."
    link = last.select_one(".attachments a[download]")["href"]
    assert world["browser"].get(link).body == PNG  # the file link works without a login
    thumbnail = world["browser"].get(last.select_one("img.thumb")["src"])
    assert thumbnail.body == PNG
    assert thumbnail.headers["Content-Disposition"].startswith("inline")
    with db.transaction() as conn:
        status = conn.execute("SELECT status::text FROM tickets").fetchone()[0]
        notice = conn.execute(
            "SELECT to_address FROM email_outbox WHERE kind = 'NOTICE'"
        ).fetchall()
        message = conn.execute(
            "SELECT author::text, channel::text FROM ticket_messages ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert status == "OPEN"
    assert notice == [("bo@example.com",)]
    assert message == ("CUSTOMER", "WEB")


def test_an_empty_reply_is_refused_on_the_page(world, db):
    form = world["browser"].get(world["link"]).forms["reply"]
    form["body"] = " "
    page = form.submit(status=422)
    assert page.html.select_one("#reply-body-error").text == "Write a message."


@pytest.mark.parametrize(
    "change",
    ["signature", "expires", "other-ticket", "no-link"],
)
def test_a_wrong_link_is_a_404_page(world, change):
    link = world["link"]
    if change == "signature":
        link = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
    elif change == "expires":
        link = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m[1]) + 86400}", link)
    elif change == "other-ticket":
        link = link.replace(world["ticket"]["pid"], world["ticket"]["pid"][:-1] + "9")
    else:
        link = link.split("?")[0]
    page = world["browser"].get(link, status=404)
    assert "not valid" in page.text


def test_an_expired_link_is_a_404_page(world, clock):
    clock.advance(days=91)
    page = world["browser"].get(world["link"], status=404)
    assert "expired" in page.text


def test_a_closed_ticket_shows_no_reply_box_and_refuses_one(world, db, make_staff):
    admin = make_staff("ADMIN")
    world["services"].tickets.update(admin, world["ticket"]["pid"], TicketChange(status="CLOSED"))
    page = world["browser"].get(world["link"])
    assert "reply" not in page.forms
    world["browser"].post(world["link"], {"body": "hello?"}, status=409)
    with db.transaction() as conn:
        assert conn.execute(
            "SELECT count(*) FROM ticket_messages WHERE author = 'CUSTOMER'"
        ).fetchone() == (1,)


def test_the_page_keeps_its_address_to_itself(world):
    """The link is the key: no Referer carries it on, no cache keeps the page, no frame."""
    page = world["browser"].get(world["link"])
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


def test_a_ticket_closed_while_the_customer_wrote_refuses_the_reply(world, db, make_staff):
    """Closed after the page checked it (the upload can take a while): add() checks again."""
    from supportdesk.tickets.customer_replies import CustomerMessage, TicketClosed

    admin = make_staff("ADMIN")
    world["services"].tickets.update(admin, world["ticket"]["pid"], TicketChange(status="CLOSED"))
    with pytest.raises(TicketClosed):
        world["services"].customers.add(
            world["ticket"]["id"], CustomerMessage("late", "WEB", "cleo@example.org")
        )


# --- issue 18, finding 11: replies on the view are limited, their notices coalesced -----------


def _reply(browser, link: str, text: str, status: int | str = 303):
    form = browser.get(link).forms["reply"]
    form["body"] = text
    return form.submit(status=status)


def _counts(db) -> tuple[int, int]:
    with db.transaction() as conn:
        [(messages,)] = conn.execute(
            "SELECT count(*) FROM ticket_messages WHERE author = 'CUSTOMER' AND channel = 'WEB'"
        ).fetchall()
        [(notices,)] = conn.execute(
            "SELECT count(*) FROM email_outbox WHERE kind = 'NOTICE'"
        ).fetchall()
    return messages - 1, notices  # the first message is the ticket's own


@pytest.mark.parametrize(
    ("limits", "replies_from"),
    [
        ({"customer_replies_per_ticket": 4}, lambda n: "10.0.0.1" if n % 2 else "10.0.0.2"),
        ({"customer_replies_per_address": 4}, lambda n: "10.0.0.1"),
    ],
    ids=["per-link", "per-client-address"],
)
def test_replies_on_the_view_are_limited(world, settings, db, redis_client, limits, replies_from):
    """15 replies in 0.2 s each emailed the assignee the attacker's text."""
    tight = settings.replace(**limits)
    app = shared_app(tight, db)
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    for n in range(4):
        browser.extra_environ["REMOTE_ADDR"] = replies_from(n)
        _reply(browser, world["link"], f"Reply {n}")
    browser.extra_environ["REMOTE_ADDR"] = replies_from(4)
    refused = _reply(browser, world["link"], "Reply 4", status=429)
    assert int(refused.headers["Retry-After"]) > 0
    assert "wait" in refused.text
    assert _counts(db)[0] == 4


def test_a_burst_of_replies_mails_the_assignee_once(world, db, clock):
    for n in range(15):
        _reply(world["browser"], world["link"], f"Pay to IBAN XX{n:02d} instead")
    assert _counts(db) == (15, 1)
    with db.transaction() as conn:
        [(text,)] = conn.execute("SELECT body_text FROM email_outbox WHERE kind = 'NOTICE'")
    assert "next 10 minutes are not emailed one by one" in text
    clock.advance(minutes=11)  # the quiet time has passed: told again
    _reply(world["browser"], world["link"], "Any news?")
    assert _counts(db) == (16, 2)


def test_a_notice_that_could_not_be_delivered_does_not_silence_the_next(world, db):
    _reply(world["browser"], world["link"], "First")
    with db.transaction() as conn:
        conn.execute(
            "UPDATE email_outbox SET status = 'DEAD', last_error = 'mailbox full' "
            "WHERE kind = 'NOTICE'"
        )
    _reply(world["browser"], world["link"], "Second")
    assert _counts(db) == (2, 2)


def test_a_participants_message_shows_under_their_name(world, db):
    """Someone copied on the ticket (section 11) wrote: the customer's view names them,
    not the requester."""
    ticket = world["ticket"]
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO ticket_participants (ticket_id, email, name, added_at) "
            "VALUES (%s, 'dana@example.org', 'Dana Doe', now())",
            (ticket["id"],),
        )
        make_message(conn, ticket["id"], author_email="dana@example.org", body="Me too.")
    page = world["browser"].get(world["link"])
    names = [s.text for s in page.html.select("article.message header strong")]
    assert names[0] == "Cleo Customer"
    assert names[-1] == "Dana Doe"
