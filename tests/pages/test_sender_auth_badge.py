"""The ticket page tells staff, on each email, whether DMARC verified its sender."""

from __future__ import annotations

import pytest
import webtest

from tests.factories import make_message, make_ticket
from tests.pages.test_ticket_pages import log_in


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def test_each_email_shows_its_verdict(browser, make_staff, db):
    make_staff("ADMIN", name="Ana Admin", email="ana@example.com")
    log_in(browser, "ana@example.com")
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_name="Cleo Customer")
        for n, verdict in enumerate(["pass", "fail", "none"]):
            make_message(
                conn,
                ticket["id"],
                channel="EMAIL",
                email_message_id=f"<m{n}@example.org>",
                sender_auth=verdict,
                body=f"Email {verdict}.",
            )
        make_message(conn, ticket["id"], body="From the web form.")
    page = browser.get(f"/tickets/{ticket['pid']}")
    headers = [a.header for a in page.html.select("section.thread article.message")]
    badges = [[b.text for b in h.select(".badge.verified, .badge.unverified")] for h in headers]
    assert badges == [
        ["Sender verified"],
        ["Unverified sender: failed DMARC"],
        [],
        [],
    ]
    assert "forged" in headers[1].select_one(".badge.unverified")["title"]
