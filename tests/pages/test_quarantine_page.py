"""The Quarantine page (issue 20): what ADMINs see of the emails that opened no ticket, and
its two actions as plain forms."""

from __future__ import annotations

import pytest
import webtest

from tests.conftest import STAFF_PASSWORD
from tests.factories import make_quarantined


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
def kept(db):
    with db.transaction() as conn:
        older = make_quarantined(conn, subject="Older", from_header="")
        newer = make_quarantined(conn, subject="Newer", from_header="<script>alert(1)</script>")
    return older, newer


def _count(db, table: str) -> int:
    with db.transaction() as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_admins_find_it_in_the_navigation_and_others_do_not(browser, make_staff):
    log_in(browser, make_staff("SUB_ADMIN"))
    assert 'href="/quarantine"' not in browser.get("/tickets").text
    browser.get("/quarantine", status=403)
    browser.reset()
    log_in(browser, make_staff("ADMIN"))
    link = browser.get("/tickets").html.find("a", href="/quarantine")
    assert link.text == "Quarantine"


def test_the_page_lists_them_newest_first_with_the_from_as_text(browser, make_staff, kept):
    log_in(browser, make_staff("ADMIN"))
    page = browser.get("/quarantine")
    rows = page.html.select("table.quarantine tbody tr")
    assert [r["id"] for r in rows] == [f"quarantined-{k['id']}" for k in reversed(kept)]
    assert "Newer" in rows[0].text
    assert rows[0].find("code").text == "<script>alert(1)</script>"  # shown, never run
    assert "<script>alert(1)" not in page.text
    assert "(none)" in rows[1].text
    assert "No sender address" in rows[1].text


def test_an_empty_quarantine_says_so(browser, make_staff):
    log_in(browser, make_staff("ADMIN"))
    assert "No email is waiting in the quarantine." in browser.get("/quarantine").text


def test_a_ticket_is_opened_from_the_page_after_a_refused_address(browser, db, make_staff, kept):
    log_in(browser, make_staff("ADMIN"))
    older = kept[0]["id"]
    form = form_with_action(browser.get("/quarantine"), f"/quarantine/{older}/ticket")
    form["requester_email"] = "not an address"
    refused = form.submit(status=422)
    error = refused.html.find(id=f"requester-{older}-error")
    assert "Enter a valid email address" in error.text
    form = form_with_action(refused, f"/quarantine/{older}/ticket")
    assert form["requester_email"].value == "not an address"  # kept to correct
    assert _count(db, "tickets") == 0

    form["requester_email"] = "cleo@example.org"
    done = form.submit(status=303).follow()
    with db.transaction() as conn:
        pid, requester, body = conn.execute(
            "SELECT t.pid, t.requester_email, m.body FROM tickets t "
            "JOIN ticket_messages m ON m.ticket_id = t.id"
        ).fetchone()
    assert (requester, body) == ("cleo@example.org", "Please call me back.")
    assert f"The email is in ticket {pid} now." in done.html.find(role="status").text
    assert done.html.find(id=f"quarantined-{older}") is None
    assert done.html.find(id=f"quarantined-{kept[1]['id']}") is not None


def test_an_email_is_discarded_from_the_page(browser, db, make_staff, kept):
    log_in(browser, make_staff("ADMIN"))
    newer = kept[1]["id"]
    form = form_with_action(browser.get("/quarantine"), f"/quarantine/{newer}/discard")
    done = form.submit(status=303).follow()
    assert "The email was discarded." in done.html.find(role="status").text
    assert done.html.find(id=f"quarantined-{newer}") is None
    assert _count(db, "quarantine") == 1
    assert _count(db, "tickets") == 0
    # Discarded twice (a second tab): the 404 page, nothing else changes.
    assert "No such email in the quarantine." in form.submit(status=404).text
