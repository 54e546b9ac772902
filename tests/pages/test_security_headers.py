"""The headers every response carries (issue 10, finding 4): a CSP without inline script,
no framing or sniffing, a Referrer-Policy, no-store on pages and auth answers, HSTS over
https."""

from __future__ import annotations

import re

import pytest
import webtest

from supportdesk.core.config import PROJECT_ROOT
from tests.conftest import STAFF_PASSWORD, shared_app
from tests.pages.test_auth_pages import log_in

COMMON = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def assert_protected(resp, *, cached_ok=False):
    for name, value in COMMON.items():
        assert resp.headers.get(name) == value, name
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    if not cached_ok:
        assert resp.headers["Cache-Control"] == "no-store"


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def test_anonymous_pages_and_errors(browser):
    for path, status in [("/", 200), ("/login", 200), ("/tickets", 303), ("/nowhere", 404)]:
        assert_protected(browser.get(path, status=status))
    resp = browser.post("/login", {"email": "x"}, status=403)  # no login CSRF cookie
    assert_protected(resp)


def test_staff_pages_and_the_login_answer_are_not_cached(browser, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    after = log_in(browser, "ana@example.com")
    assert after.status_int == 303
    assert_protected(after)
    for path in ("/tickets", "/users", "/outbox"):
        assert_protected(browser.get(path))


def test_api_answers(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    login = client.post_json(
        "/api/auth/login", {"email": "bo@example.com", "password": STAFF_PASSWORD}
    )
    assert_protected(login)
    assert_protected(client.get("/api/auth/me"))
    assert_protected(client.get("/api/tickets/202611-00001", status=404))


def test_static_files_may_be_cached(client):
    resp = client.get("/static/app.css")
    assert_protected(resp, cached_ok=True)
    assert "no-store" not in resp.headers.get("Cache-Control", "")


def test_a_download_keeps_its_own_sandbox_policy(client, settings, db, make_staff, bearer):
    headers = bearer(make_staff("ADMIN"))
    ticket = client.post(
        "/api/tickets",
        {"name": "Ann", "email": "ann@example.org", "subject": "Hi", "body": "File."},
        upload_files=[("attachments", "notes.txt", b"hello")],
        headers=headers,
        status=201,
    ).json["ticket"]
    [message] = client.get(f"/api/tickets/{ticket['pid']}/messages", headers=headers).json["items"]
    [file] = message["attachments"]
    resp = client.get(f"/api/attachments/{file['id']}", headers=headers)
    assert resp.headers["Content-Security-Policy"].startswith("sandbox")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_only_where_cookies_are_secure(settings, db, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    https = settings.replace(environment="production")
    app = webtest.TestApp(shared_app(https, db))
    assert app.get("/login").headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize(
    "template", sorted(p.name for p in (PROJECT_ROOT / "templates").glob("*.html"))
)
def test_no_template_has_inline_script_or_style(template):
    """The CSP would block them: a page's script and style come from /static."""
    text = (PROJECT_ROOT / "templates" / template).read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text)
    assert not re.search(r"\son[a-z]+\s*=", text)  # onclick=... handlers are inline script
    assert "javascript:" not in text
    assert not re.search(r"\sstyle\s*=", text)  # style-src 'self': inline styles are blocked
