"""Merge and split in the pages (DESIGN.md section 12): the "Merge into…" form, the banner
of a merged ticket, the "Split into a new ticket" button of a customer's message (plain
forms, no JavaScript needed), and the customer's view of a merged ticket."""

from __future__ import annotations

import re

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.tickets.inputs import NewMessage, NewTicket
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.pages.test_ticket_pages import form_with_action, log_in
from tests.webhook import rows


@pytest.fixture
def desk(settings, db, redis_client, make_staff):
    services = build_services(settings, db, make_redis(settings))
    ana = make_staff("ADMIN", email="ana@example.com", name="Ana")
    bo = make_staff("AGENT", email="bo@example.com", name="Bo")

    def open_ticket(subject: str, body: str):
        new = NewTicket("Cleo Customer", "cleo@example.org", subject, body, "NORMAL")
        return services.tickets.create(new, channel="WEB")

    first = open_ticket("Printer jams", "Tray 2 jams.")
    duplicate = open_ticket("Printer jams again", "Still jams. Also: my scanner.")
    app = shared_app(settings, db)
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    log_in(browser, "ana@example.com")
    return {
        "services": services,
        "browser": browser,
        "first": first,
        "duplicate": duplicate,
        "bo": bo,
        "ana": ana,
    }


def test_staff_merge_a_duplicate_from_its_page(desk, db):
    browser, first, duplicate = desk["browser"], desk["first"], desk["duplicate"]
    page = browser.get(f"/tickets/{duplicate['pid']}")
    form = form_with_action(page, f"/tickets/{duplicate['pid']}/merge")
    form["into"] = f"#{first['pid']}"  # as people write it
    target = form.submit().follow()
    assert target.request.path == f"/tickets/{first['pid']}"
    assert target.html.select_one(".alert.ok").text == (
        "Merged: the other ticket's conversation is now part of this one."
    )
    bodies = [b.text for b in target.html.select(".message-body")]
    assert bodies == ["Tray 2 jams.", "Still jams. Also: my scanner."]
    summaries = [e.text for e in target.html.select(".timeline li span")]
    assert summaries[-1] == f"Ana merged #{duplicate['pid']} into this ticket (1 message)"

    merged = browser.get(f"/tickets/{duplicate['pid']}")
    banner = merged.html.select_one(".merged-banner")
    assert banner.text.startswith(f"Merged into #{first['pid']}")
    assert banner.a["href"] == f"/tickets/{first['pid']}"
    # A merged ticket is merged, changed and answered no further: no form for any of it,
    # and the reply box points at the target.
    actions = [f.action for f in merged.forms.values()]
    for gone in ("/merge", "/messages", ""):
        assert f"/tickets/{duplicate['pid']}{gone}" not in actions
    assert merged.html.select_one("#reply a")["href"] == f"/tickets/{first['pid']}"
    assert rows(db, "SELECT status::text FROM tickets WHERE id = %s", duplicate["id"]) == [
        {"status": "CLOSED"}
    ]


@pytest.mark.parametrize(
    ("into", "said"),
    [
        ("itself", "A ticket cannot be merged into itself."),
        ("nonsense", "Give a ticket number such as 202612-00042."),
        ("209901-99999", "No ticket #209901-99999 that you can see."),
    ],
)
def test_a_refused_merge_is_said_on_the_ticket_page(desk, db, into, said):
    browser, duplicate = desk["browser"], desk["duplicate"]
    page = browser.get(f"/tickets/{duplicate['pid']}")
    form = form_with_action(page, f"/tickets/{duplicate['pid']}/merge")
    form["into"] = duplicate["pid"] if into == "itself" else into
    refused = form.submit(status=422)
    assert said in refused.html.select_one(".alert.error").text
    assert refused.html.find(id="merge-into")["aria-invalid"] == "true"
    assert rows(db, "SELECT id FROM tickets WHERE merged_into_id IS NOT NULL") == []


def test_staff_split_a_customer_message_off_with_its_button(desk, db):
    browser, first = desk["browser"], desk["first"]
    services = desk["services"]
    services.messages.post(desk["ana"], first["pid"], NewMessage("On it."), channel="API")
    page = browser.get(f"/tickets/{first['pid']}")
    # One button per customer message (never on staff's); none when it is the only message.
    buttons = page.html.select("form.split-form")
    assert len(buttons) == 1
    [(message_id,)] = [
        (m["id"],) for m in rows(db, "SELECT id FROM ticket_messages WHERE author = 'CUSTOMER' "
                                     "AND ticket_id = %s", first["id"])
    ]  # fmt: skip
    form = form_with_action(page, f"/tickets/{first['pid']}/messages/{message_id}/split")
    new = form.submit().follow()
    assert "A new ticket was opened from that message." in new.text
    assert [b.text for b in new.html.select(".message-body")] == ["Tray 2 jams."]
    new_pid = re.fullmatch(r"/tickets/(.+)", new.request.path).group(1)
    source = browser.get(f"/tickets/{first['pid']}")
    assert [e.text for e in source.html.select(".timeline li span")][-1] == (
        f"Ana split a message off into the new ticket #{new_pid}"
    )
    assert source.html.select("form.split-form") == []  # only staff's reply is left


def test_the_customers_view_of_a_merged_ticket_opens_the_target(desk, db):
    services, first, duplicate = desk["services"], desk["first"], desk["duplicate"]
    services.merging.merge(desk["ana"], duplicate["pid"], first["pid"])
    [ack] = rows(
        db, "SELECT body_text FROM email_outbox WHERE ticket_id = %s AND kind = 'ACKNOWLEDGEMENT'",
        duplicate["id"],
    )  # fmt: skip
    link = re.search(r"http://127\.0\.0\.1:8000(/t/\S+)", ack["body_text"]).group(1)
    customer = webtest.TestApp(desk["browser"].app, extra_environ={"HTTP_ACCEPT": "text/html"})
    moved = customer.get(link, status=303)
    assert moved.headers["Location"].startswith(f"/t/{first['pid']}?expires=")
    assert moved.headers["Referrer-Policy"] == "no-referrer"
    view = moved.follow()
    assert [b.text for b in view.html.select(".message-body")] == [
        "Tray 2 jams.",
        "Still jams. Also: my scanner.",
    ]
