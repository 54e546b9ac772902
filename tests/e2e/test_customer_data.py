"""The Customer data page in a real browser (DESIGN.md section 13): an ADMIN downloads a
customer's export and erases them after the confirmation step (plain forms); each page
passes the axe-core audit and its CSP."""

from __future__ import annotations

import json
import zipfile

from tests.conftest import STAFF_PASSWORD
from tests.e2e.test_journey import Pages
from tests.factories import make_message, make_ticket

ZED = "zed@example.org"


def test_an_admin_exports_then_erases_a_customer(page, db, make_staff, screenshots, tmp_path):
    # The page needs no JavaScript (plain forms); the axe audit does, so the browser has it.
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_email=ZED, requester_name="Zed Zedson")
        make_message(conn, ticket["id"], body="Zed's secret words.")
    pages = Pages(screenshots, prefix="customer-data")
    page.goto("/login")
    page.fill("#email", "ana@example.com")
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/tickets")
    page.click("header a:has-text('Customer data')")
    page.wait_for_url("**/customer-data")
    pages.keep(page, "form")

    page.fill("#export-email", ZED)
    with page.expect_download() as download:
        page.click("button:has-text('Download the export')")
    path = tmp_path / "export.zip"
    download.value.save_as(path)
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    assert [t["pid"] for t in manifest["tickets"]] == [ticket["pid"]]

    page.fill("#erase-email", ZED)
    page.click("button:has-text('Erase…')")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == f"Erase {ZED}?"
    pages.keep(page, "confirm")
    page.fill("#confirm", ZED)
    page.click("button:has-text('Erase for good')")
    page.wait_for_url("**/customer-data?notice=erased**")
    assert "Erased: 1 of their tickets" in page.locator("[role=status]").inner_text()
    pages.keep(page, "erased")
    with db.transaction() as conn:
        [(body,)] = conn.execute("SELECT body FROM ticket_messages").fetchall()
    assert body == "[erased]"
