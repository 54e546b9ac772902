"""The Customer data page (DESIGN.md section 13): an ADMIN's form to export (a download) or
erase (after a confirmation step) one customer's data, with plain forms, no JavaScript."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import webtest

from tests.conftest import STAFF_PASSWORD
from tests.factories import make_message, make_ticket
from tests.webhook import rows

ZED = "zed@example.org"


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def log_in(browser, user):
    form = browser.get("/login").forms[0]
    form["email"] = user["email"]
    form["password"] = STAFF_PASSWORD
    form.submit()


def form_with_action(page, action):
    return next(f for f in page.forms.values() if f.action == action)


@pytest.fixture
def zed(db):
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_email=ZED, requester_name="Zed Zedson")
        make_message(conn, ticket["id"], body="Zed's secret words.")
    return ticket


def _requesters(db) -> list[str]:
    return [r["requester_email"] for r in rows(db, "SELECT requester_email FROM tickets")]


def test_admins_find_it_in_the_navigation_and_others_do_not(browser, make_staff):
    log_in(browser, make_staff("SUB_ADMIN"))
    assert 'href="/customer-data"' not in browser.get("/tickets").text
    browser.get("/customer-data", status=403)
    browser.reset()
    log_in(browser, make_staff("ADMIN"))
    link = browser.get("/tickets").html.find("a", href="/customer-data")
    assert link.text == "Customer data"


def test_the_export_form_downloads_the_zip(browser, make_staff, zed):
    log_in(browser, make_staff("ADMIN"))
    form = form_with_action(browser.get("/customer-data"), "/customer-data/export")
    form["email"] = ZED.upper()
    resp = form.submit()
    assert resp.content_type == "application/zip"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    archive = zipfile.ZipFile(io.BytesIO(resp.body))
    manifest = json.loads(archive.read("manifest.json"))
    assert [t["pid"] for t in manifest["tickets"]] == [zed["pid"]]


def test_a_bad_address_shows_the_form_again_with_the_error(browser, make_staff):
    log_in(browser, make_staff("ADMIN"))
    page = browser.get("/customer-data/export?email=nonsense", status=422)
    assert page.html.select_one("#export-email-error").text.startswith("Enter a valid email")
    assert page.html.select_one("#export-email")["value"] == "nonsense"


def test_erasing_asks_to_confirm_then_erases(browser, db, make_staff, zed):
    log_in(browser, make_staff("ADMIN"))
    form = form_with_action(browser.get("/customer-data"), "/customer-data/erase")
    form["email"] = ZED
    confirm = form.submit()
    assert confirm.status_int == 200
    assert f"Erase {ZED}?" in confirm.text
    assert _requesters(db) == [ZED]  # nothing yet

    step = form_with_action(confirm, "/customer-data/erase")
    step["confirm"] = "someone@else.org"
    refused = step.submit(status=422)
    assert refused.html.select_one("#confirm-error").text == "Type the same address to confirm."
    assert _requesters(db) == [ZED]

    step = form_with_action(refused, "/customer-data/erase")
    step["confirm"] = ZED
    done = step.submit(status=303).follow()
    assert "Erased: 1 of their tickets" in done.html.select_one("[role=status]").text
    assert _requesters(db) == ["erased@erased.invalid"]


def test_erasing_without_the_csrf_token_is_refused(browser, db, make_staff, zed):
    log_in(browser, make_staff("ADMIN"))
    browser.post("/customer-data/erase", {"email": ZED, "confirm": ZED}, status=403)
    assert _requesters(db) == [ZED]
