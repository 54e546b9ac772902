"""From the customer's form to assignment and a reply, clicked in a real browser."""

from __future__ import annotations

import re

from tests.api.test_attachments import PNG
from tests.conftest import STAFF_PASSWORD
from tests.factories import first_ticket_pid


def test_customer_opens_a_ticket_and_an_admin_assigns_it(page, make_staff, screenshots, db):
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    make_staff("AGENT", email="bo@example.com", name="Bo Agent")

    # The customer: a mistake first, then the confirmation with the ticket number.
    page.goto("/")
    page.fill("#name", "Cleo Customer")
    page.fill("#email", "cleo at example")
    page.fill("#subject", "The printer jams on every page")
    page.fill("#body", "Tray 2 jams.\nWe restarted it twice.")
    page.select_option("#priority", "HIGH")
    page.click("button[type=submit]")
    assert page.locator("#email-error").inner_text().startswith("Enter a valid email address")
    assert page.input_value("#subject") == "The printer jams on every page"
    page.screenshot(path=screenshots / "public-form-error.png", full_page=True)
    page.fill("#email", "cleo@example.org")
    page.set_input_files(
        "#attachments",
        files=[{"name": "jam.png", "mimeType": "image/png", "buffer": PNG}],
    )
    page.click("button[type=submit]")
    page.locator("#pid").wait_for()
    with db.transaction() as conn:
        pid = first_ticket_pid(conn)
    assert page.locator("#pid").inner_text() == pid
    page.screenshot(path=screenshots / "confirmation.png", full_page=True)

    # The admin: the staff list needs a login, and comes back after it.
    page.context.clear_cookies()
    page.goto("/tickets")
    assert re.search(r"/login\?next=%2Ftickets$", page.url)
    page.fill("#email", "ana@example.com")
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/tickets")
    row = page.locator("table.tickets tbody tr").first
    assert pid in row.inner_text()
    assert "High" in row.inner_text()
    page.screenshot(path=screenshots / "ticket-list.png", full_page=True)

    # The ticket: assign it through the dialog.
    row.locator(f"a:has-text('{pid}')").click()
    page.wait_for_url(f"**/tickets/{pid}")
    assert page.locator("#assignee").inner_text() == "Unassigned"
    page.click("button[data-open-dialog]")
    dialog = page.locator("#assign-dialog")
    assert dialog.is_visible()
    page.screenshot(path=screenshots / "assign-dialog.png", full_page=True)
    dialog.locator("select").select_option(label="Bo Agent · AGENT")
    dialog.locator("button[type=submit]").click()
    page.wait_for_url(f"**/tickets/{pid}?notice=assigned")
    assert page.locator("#assignee").inner_text() == "Bo Agent"
    assert (
        page.locator(".timeline li")
        .last.inner_text()
        .startswith("Ana Admin assigned this to Bo Agent")
    )
    assert "Tray 2 jams." in page.locator(".message-body").first.inner_text()
    # The customer's photo: a thumbnail (through the same access check) and a download link.
    first = page.locator("article.message").first
    assert first.locator(".attachments a", has_text="jam.png").count() == 1
    thumbnail = first.locator("img.thumb")
    thumbnail.wait_for()
    assert thumbnail.evaluate("img => img.decode().then(() => img.naturalWidth)") == 1
    page.screenshot(path=screenshots / "ticket-page.png", full_page=True)

    # A reply from the reply box, then an internal note; the conversation shows both.
    page.fill("#reply-body", "We are sending a technician.\nDetails: https://example.org/visit")
    page.click("#reply button[type=submit]")
    page.wait_for_url(f"**/tickets/{pid}?notice=replied#message-*")
    reply = page.locator("article.message").last
    assert "from-staff" in (reply.get_attribute("class") or "")
    assert reply.locator("a").get_attribute("href") == "https://example.org/visit"
    assert page.locator(".facts").inner_text().count("In progress") == 1
    page.fill("#reply-body", "Old model; check the warranty.")
    page.check("input[name=internal]")
    page.click("#reply button[type=submit]")
    page.wait_for_url(f"**/tickets/{pid}?notice=noted#message-*")
    note = page.locator("article.message").last
    assert "internal" in (note.get_attribute("class") or "")
    page.screenshot(path=screenshots / "conversation.png", full_page=True)

    with db.transaction() as conn:
        rows = conn.execute("SELECT kind::text, to_address FROM email_outbox ORDER BY id")
        sent = [tuple(r) for r in rows]
    assert sent == [
        ("ACKNOWLEDGEMENT", "cleo@example.org"),
        ("ASSIGNMENT", "bo@example.com"),
        ("REPLY", "cleo@example.org"),  # the note is never emailed
    ]
