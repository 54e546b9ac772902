"""Outgoing webhooks in a real browser, on the real processes (issue 23, DESIGN.md section
13): an ADMIN registers a webhook on the Webhooks page; a ticket opened through the API is
delivered by the `supportdesk worker` process to a receiver in this test, which answers 500
until the delivery is DEAD; the page shows it with its error and a Retry button, which
sends it again, this time accepted. Each page passes the axe audit; the page fixture's CSP
check runs on every page."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e import test_journey
from tests.e2e.test_journey import Pages, log_in
from tests.webhookreceiver import Reply, WebhookReceiver, when

# The journey's processes and browser context, as fixtures of this module too.
desk = test_journey.desk
journey = test_journey.journey

FAST_AND_PRIVATE = {
    "WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
    "EMAIL_RETRY_BASE_SECONDS": "0.1",
    "EMAIL_RETRY_MAX_SECONDS": "0.2",
    "EMAIL_MAX_ATTEMPTS": "2",
}


def statuses(db) -> list[str]:
    with db.transaction() as conn:
        return [s for (s,) in conn.execute("SELECT status::text FROM webhook_deliveries")]


@pytest.mark.parametrize("desk", [FAST_AND_PRIVATE], indirect=True)
def test_an_admin_registers_a_webhook_and_retries_a_dead_delivery(
    journey, desk, db, make_staff, screenshots
):
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    receiver = WebhookReceiver(Reply(500, b"down"), Reply(500, b"down"), Reply(200)).start()
    folder = screenshots / "webhooks"
    folder.mkdir(exist_ok=True)
    pages = Pages(folder, prefix="webhooks")
    page = journey.new_page()
    try:
        log_in(page, "ana@example.com")
        page.click("header nav a:has-text('Webhooks')")
        page.wait_for_url("**/webhooks")
        pages.keep(page, "empty")

        # 1. Registered from the page; a bad URL first is shown again with its reason.
        page.fill("#url", "ftp://example.com/hook")
        page.check("input[name='event:ticket.created']")
        page.fill("#secret", "a-page-secret-0123")
        page.click("button:has-text('Register')")
        assert "must start with https:// or http://" in page.inner_text("main")
        pages.keep(page, "refused")
        page.fill("#url", receiver.url())
        page.check("input[name='event:ticket.created']")
        page.fill("#secret", "a-page-secret-0123")
        page.click("button:has-text('Register')")
        page.wait_for_url("**/webhooks?notice=added")
        pages.keep(page, "registered")

        # 2. A ticket through the API; the worker process gives up after two 500s.
        body = json.dumps(
            {"name": "Cleo", "email": "cleo@example.org", "subject": "Jam", "body": "Tray 2."}
        ).encode()
        request = urllib.request.Request(
            f"{desk['url']}/api/tickets", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=15) as resp:
            assert resp.status == 201
        when(lambda: statuses(db) == ["DEAD"], timeout=30, what="DEAD")
        page.reload()
        assert "HTTP 500: down" in page.inner_text("main")
        pages.keep(page, "dead")

        # 3. Retry: sent again, accepted.
        page.click("button:has-text('Retry')")
        page.wait_for_url("**/webhooks?notice=retried")
        when(lambda: statuses(db) == ["SENT"], timeout=30, what="SENT")
        page.reload()
        assert page.locator("button:has-text('Retry')").count() == 0
        pages.keep(page, "sent")
    finally:
        receiver.stop()
    assert len(receiver.received) == 3
