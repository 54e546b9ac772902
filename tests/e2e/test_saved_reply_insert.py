"""The reply box's Insert in a real browser with JavaScript off (DESIGN.md section 12): the
button's formaction, formenctype and formnovalidate send the reply form as it is (an empty
required box included) to the page that fills the saved reply in. With JavaScript on, the
journey (tests/e2e/test_journey.py) inserts one at the cursor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import STAFF_PASSWORD
from tests.factories import make_ticket


@pytest.fixture
def no_script_page(chromium, live_server) -> Iterator[object]:
    context = chromium.new_context(base_url=live_server, java_script_enabled=False)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("typed", ["", "Thanks for waiting."])
def test_insert_without_javascript_in_a_browser(no_script_page, db, make_staff, typed):
    page = no_script_page
    bo = make_staff("AGENT", email="bo@example.com", name="Bo Agent")
    with db.transaction() as conn:
        pid = make_ticket(conn, requester_name="Cleo Customer", assigned_to=bo["id"])["pid"]
        conn.execute(
            "INSERT INTO saved_replies (title, body, owner_id, created_by) "
            "VALUES ('Hello', 'Hello {{ customer.first_name }}, about {{ ticket.pid }}.', %s, %s)",
            (bo["id"], bo["id"]),
        )
    page.goto("/login")
    page.fill("#email", "bo@example.com")
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/tickets")
    page.goto(f"/tickets/{pid}")
    page.fill("#reply-body", typed)
    page.select_option("#reply-status", "WAITING")
    page.click("#saved-reply-insert")
    page.wait_for_load_state()
    filled = f"Hello Cleo, about {pid}."
    expected = f"{typed}\n\n{filled}" if typed else filled
    assert page.locator("#reply-body").input_value() == expected
    assert page.locator("#reply-status").input_value() == "WAITING"
    page.click("#reply button:has-text('Send')")
    page.wait_for_url(f"**/tickets/{pid}?notice=replied*")
    assert page.locator("article.message .message-body").last.inner_text().strip() == expected
