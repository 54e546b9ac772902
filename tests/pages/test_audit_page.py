"""The Audit log page (ADMIN only): the same filters as `GET /api/audit` in a GET form that
works without JavaScript, labels for each action, and pages older and back."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from supportdesk.core.vocabulary import AUDIT_ACTION_LABELS
from tests.api.test_audit_log import DAY, write


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin", email="ana@example.com")


@pytest.fixture
def bo(make_staff):
    return make_staff("AGENT", name="Bo Agent", email="bo@example.com")


@pytest.fixture
def browser(client, tokens, admin):
    client.set_cookie("session", tokens.issue(admin)[0])
    return client


def test_the_page_lists_entries_with_labels_and_is_linked_for_admins(browser, admin, bo, db):
    write(
        db, "ROLE_CHANGED", admin, target=("user", bo["id"]), data={"from": "AGENT", "to": "ADMIN"}
    )
    page = browser.get("/audit")
    assert '<a href="/audit" aria-current="page">Audit log</a>' in page.text
    row = page.html.select_one("table.audit tbody tr")
    text = " ".join(row.get_text(" ").split())
    assert "2026-11-20 09:30:00" in text
    assert "Ana Admin" in text
    assert "ana@example.com" in text
    assert AUDIT_ACTION_LABELS["ROLE_CHANGED"] in text
    assert f"user {bo['id']}" in text
    assert "from: AGENT" in text
    assert "to: ADMIN" in text
    assert "198.51.100.4" in text


def test_the_navigation_shows_the_page_to_admins_only(client, tokens, make_staff):
    for role, shown in (("ADMIN", True), ("SUB_ADMIN", False), ("AGENT", False)):
        client.set_cookie("session", tokens.issue(make_staff(role))[0])
        assert ('href="/audit"' in client.get("/tickets").text) is shown


def test_the_page_filters_with_a_plain_get_form(browser, admin, bo, db):
    write(db, "LOGIN", bo, at=DAY - timedelta(days=1))
    write(db, "LOGIN", admin)
    page = browser.get("/audit")
    form = page.forms[1]  # the first is the header's log out
    assert form.method.upper() == "GET"
    form["actor"] = str(bo["id"])
    form["action"] = "LOGIN"
    form["from"] = "2026-11-19"
    form["to"] = "2026-11-19"
    filtered = form.submit()
    rows = filtered.html.select("table.audit tbody tr")
    assert len(rows) == 1
    assert "Bo Agent" in rows[0].get_text()
    again = filtered.forms[1]  # the filters stay as chosen
    assert (again["actor"].value, again["action"].value) == (str(bo["id"]), "LOGIN")
    assert (again["from"].value, again["to"].value) == ("2026-11-19", "2026-11-19")


def test_the_page_shows_bad_filters_beside_their_fields(browser):
    page = browser.get("/audit?from=2026-11-21&to=2026-11-20", status=422)
    assert page.html.select_one("#to-error").get_text() == "Give a moment after `from`."
    assert page.html.select_one("#to")["aria-invalid"] == "true"
    assert page.html.select_one("table.audit") is None


def test_the_page_goes_to_older_entries_and_back(browser, admin, db):
    for n in range(30):
        write(db, "LOGIN", admin, at=DAY + timedelta(minutes=n))
    first = browser.get("/audit?action=LOGIN")
    assert len(first.html.select("table.audit tbody tr")) == 25
    older_link = first.html.select_one('a[rel="next"]')["href"]
    assert parse_qs(urlsplit(older_link).query)["action"] == ["LOGIN"]
    older = browser.get(older_link)
    assert len(older.html.select("table.audit tbody tr")) == 5
    assert older.html.select_one('a[rel="next"]') is None
    assert older.html.find("a", string="← Newest")["href"] == "/audit?action=LOGIN"


def test_rows_without_an_actor_say_whether_the_system_or_nobody_known_did_it(browser, db):
    write(db, "USER_CREATED", target=("user", 1), data={"role": "ADMIN"})
    write(db, "LOGIN_FAILED", subject="who@example.com", at=DAY + timedelta(minutes=1))
    failed, created = [
        " ".join(row.get_text(" ").split())
        for row in browser.get("/audit").html.select("table.audit tbody tr")
    ]
    assert "Nobody signed in" in failed
    assert "as who@example.com" in failed
    assert "System" in created
