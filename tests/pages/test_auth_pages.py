"""The login page and the staff pages, driven as a browser would (forms, cookies, redirects)."""

from __future__ import annotations

import pytest
import webtest

from tests.conftest import STAFF_PASSWORD

HTML = {"Accept": "text/html"}


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def log_in(browser, email, password=STAFF_PASSWORD, next_url=None):
    page = browser.get("/login" + (f"?next={next_url}" if next_url else ""))
    form = page.forms[0]
    form["email"] = email
    form["password"] = password
    return form.submit(expect_errors=True)


def test_staff_page_sends_anonymous_visitor_to_login_and_back(browser, make_staff):
    make_staff("ADMIN", email="ana@example.com", name="Ana")
    resp = browser.get("/users")
    assert resp.status_int == 303
    assert resp.headers["Location"] == "/login?next=%2Fusers"
    page = resp.follow()
    assert page.forms[0]["next"].value == "/users"
    form = page.forms[0]
    form["email"] = "ana@example.com"
    form["password"] = STAFF_PASSWORD
    after = form.submit()
    assert after.status_int == 303
    assert after.headers["Location"] == "/users"
    users = after.follow()
    assert "Ana" in users.text
    assert "ADMIN" in users.text


def test_wrong_password_keeps_the_email_and_says_why(browser, make_staff):
    make_staff("AGENT", email="bo@example.com")
    resp = log_in(browser, "bo@example.com", "not the password")
    assert resp.status_int == 401
    assert "Email or password is incorrect." in resp.text
    assert resp.forms[0]["email"].value == "bo@example.com"
    assert resp.forms[0]["password"].value == ""


def test_login_page_rate_limit_is_shown(browser, make_staff):
    make_staff("AGENT", email="bo@example.com")
    for _ in range(5):
        log_in(browser, "bo@example.com", "not the password")
    resp = log_in(browser, "bo@example.com")
    assert resp.status_int == 429
    assert resp.headers["Retry-After"]
    assert "Too many failed login attempts" in resp.text


def test_login_form_without_its_token_is_refused(browser, make_staff):
    make_staff("AGENT", email="bo@example.com")
    resp = browser.post(
        "/login", {"email": "bo@example.com", "password": STAFF_PASSWORD}, status=403
    )
    assert "expired" in resp.text
    assert "session=" not in resp.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_login_never_redirects_off_site(browser, make_staff, target):
    make_staff("AGENT", email="bo@example.com")
    resp = log_in(browser, "bo@example.com", next_url=target)
    assert resp.headers["Location"] == "/tickets"


def test_logout_button_logs_out(browser, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    page = browser.get("/users")
    logout = next(f for f in page.forms.values() if f.action == "/logout")
    resp = logout.submit()
    assert resp.headers["Location"] == "/login"
    assert browser.get("/users").status_int == 303


def test_agent_sees_a_forbidden_page_not_the_staff_list(browser, make_staff):
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    resp = browser.get("/users", status=403)
    assert "You are not allowed to do that." in resp.text
    assert "text/html" in resp.content_type


def test_admin_adds_a_staff_member_with_field_errors_first(browser, make_staff, db):
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    page = browser.get("/users")
    form = next(f for f in page.forms.values() if f.action == "/users")
    form["name"] = "Cy"
    form["email"] = "not an email"
    form["role"] = "SUB_ADMIN"
    form["password"] = "short"
    resp = form.submit(status=422)
    assert "Enter a valid email address" in resp.text
    assert "Use at least 10 characters." in resp.text
    form = next(f for f in resp.forms.values() if f.action == "/users")
    assert form["name"].value == "Cy"  # what was typed is kept
    assert form["role"].value == "SUB_ADMIN"
    form["email"] = "cy@example.com"
    form["password"] = "a long enough password"
    done = form.submit().follow()
    assert "Staff member added." in done.text
    assert "cy@example.com" in done.text
    with db.transaction() as conn:
        assert conn.execute("SELECT role FROM users WHERE email = 'cy@example.com'").fetchone() == (
            "SUB_ADMIN",
        )


def test_sub_admin_can_only_offer_agent_role(browser, make_staff):
    make_staff("SUB_ADMIN", email="sam@example.com")
    log_in(browser, "sam@example.com")
    page = browser.get("/users")
    form = next(f for f in page.forms.values() if f.action == "/users")
    assert [value for value, _, _ in form["role"].options] == ["AGENT"]


def test_admin_edits_and_deactivates_an_agent(browser, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    agent = make_staff("AGENT", email="bo@example.com", name="Bo")
    log_in(browser, "ana@example.com")
    page = browser.get(f"/users/{agent['id']}")
    form = next(f for f in page.forms.values() if f.action == f"/users/{agent['id']}")
    form["name"] = "Bo Renamed"
    form["is_active"] = False
    saved = form.submit().follow()
    assert "Saved." in saved.text
    assert "Bo Renamed" in saved.text
    other = webtest.TestApp(browser.app, extra_environ={"HTTP_ACCEPT": "text/html"})
    assert log_in(other, "bo@example.com").status_int == 401


def test_admin_cannot_deactivate_themselves_from_the_page(browser, make_staff):
    admin = make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    page = browser.get(f"/users/{admin['id']}")
    form = next(f for f in page.forms.values() if f.action == f"/users/{admin['id']}")
    form["is_active"] = False
    resp = form.submit(status=403)
    assert "You cannot deactivate yourself." in resp.text


def test_html_pages_escape_user_input(browser, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    make_staff("AGENT", name="<script>alert(1)</script>")
    log_in(browser, "ana@example.com")
    page = browser.get("/users")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text


@pytest.mark.parametrize(
    ("path", "status"),
    [("/tickets/202611-99999", 404), ("/outbox", 403), ("/no/such/page", 404)],
)
def test_error_pages_keep_the_logged_in_header(browser, make_staff, path, status):
    """Issue 10, finding 7: an error page showed "Staff login" to a logged-in user."""
    make_staff("AGENT", email="bo@example.com", name="Bo Agent")
    log_in(browser, "bo@example.com")
    page = browser.get(path, status=status)
    header = page.html.find("header")
    assert "Bo Agent" in header.text
    assert "Staff login" not in header.text
    # The logout form there works: it carries this session's CSRF token.
    logout = next(f for f in page.forms.values() if f.action == "/logout")
    assert logout.submit(status=303).headers["Location"] == "/login"
    browser.get("/tickets", status=303)


def test_an_anonymous_error_page_offers_the_login(browser):
    header = browser.get("/no/such/page", status=404).html.find("header")
    assert "Staff login" in header.text
