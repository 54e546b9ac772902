"""Two-factor on the pages, driven as a browser without JavaScript would (forms, cookies,
redirects): the account page's enrolment, the login's code step, turning it off, an ADMIN's
reset from the staff member's page, and REQUIRE_2FA_FOR leading to enrolment."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
import webtest

from tests.clock import Clock
from tests.conftest import STAFF_PASSWORD, shared_app

CLOCK = Clock(behind=timedelta(minutes=20))  # set back for each test (tests/clock.py)


@pytest.fixture
def clock() -> Clock:
    return CLOCK.reset()


def make_browser(settings, db, clock, **over) -> webtest.TestApp:
    current = settings.replace(**over)
    app = shared_app(current, db, clock=clock)
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


@pytest.fixture
def browser(settings, db, clock) -> webtest.TestApp:
    return make_browser(settings, db, clock)


def form_to(page, action: str) -> webtest.forms.Form:
    [form] = [f for f in page.forms.values() if f.action == action]
    return form


def log_in(browser, email, password=STAFF_PASSWORD):
    browser.reset()
    form = form_to(browser.get("/login"), "/login")
    form["email"] = email
    form["password"] = password
    return form.submit(expect_errors=True)


def enrol_on_the_page(browser, clock) -> tuple[str, list[str]]:
    page = browser.get("/account/two-factor")
    assert "is <strong>off</strong>" in page.text
    page = form_to(page, "/account/two-factor").submit()
    assert page.status_int == 200
    assert page.html.select_one("figure.qr svg") is not None
    secret = page.html.select_one("#totp-secret").text
    form = form_to(page, "/account/two-factor/confirm")
    form["code"] = "000000" if pyotp.TOTP(secret).at(clock()) != "000000" else "111111"
    refused = form.submit(status=422)
    assert "not right" in refused.text
    assert refused.html.select_one("#totp-secret").text == secret  # the same enrolment
    form = form_to(refused, "/account/two-factor/confirm")
    form["code"] = pyotp.TOTP(secret).at(clock())
    done = form.submit()
    codes = [c.text for c in done.html.select("ul.recovery-codes code")]
    assert len(codes) == 10
    assert "not shown again" in done.text
    again = browser.get("/account/two-factor")
    assert "is <strong>on</strong>" in again.text
    assert not set(codes) & set(again.text.split())  # shown once only
    clock.now += timedelta(seconds=30)
    return secret, codes


def test_enrol_on_the_account_page_and_log_in_with_the_code_step(browser, make_staff, clock):
    make_staff("AGENT", email="bo@example.com")
    assert log_in(browser, "bo@example.com").headers["Location"] == "/tickets"
    account = browser.get("/account/notifications")
    assert "Set up two-factor authentication" in account.text  # the account page's section
    secret, _ = enrol_on_the_page(browser, clock)

    step = log_in(browser, "bo@example.com")
    assert step.status_int == 200  # the code step, no session yet
    assert "session=" not in step.headers.get("Set-Cookie", "")
    form = form_to(step, "/login/2fa")
    form["code"] = "12345"  # not a code
    wrong = form.submit(status=422)
    assert form_to(wrong, "/login/2fa")["challenge"].value == form["challenge"].value
    form = form_to(wrong, "/login/2fa")
    form["code"] = pyotp.TOTP(secret).at(clock())
    done = form.submit()
    assert done.status_int == 303
    assert done.headers["Location"] == "/tickets"
    assert browser.get("/tickets").status_int == 200


def test_a_forged_challenge_goes_back_to_the_password(browser, make_staff, clock):
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    enrol_on_the_page(browser, clock)
    form = form_to(log_in(browser, "bo@example.com"), "/login/2fa")
    form["challenge"] = form["challenge"].value + "x"
    form["code"] = "123456"
    back = form.submit(status=401)
    assert "expired" in back.text
    assert form_to(back, "/login")["email"] is not None


def test_turn_it_off_on_the_page_with_a_recovery_code(browser, make_staff, clock):
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    _, codes = enrol_on_the_page(browser, clock)
    page = browser.get("/account/two-factor")
    form = form_to(page, "/account/two-factor/disable")
    form["password"] = "not my password"
    form["code"] = codes[0]
    refused = form.submit(status=422)
    assert "This is not your password." in refused.text
    form = form_to(refused, "/account/two-factor/disable")
    form["password"] = STAFF_PASSWORD
    form["code"] = codes[0]
    done = form.submit()
    assert done.headers["Location"] == "/account/two-factor?done=off"
    assert "is <strong>off</strong>" in done.follow().text
    assert log_in(browser, "bo@example.com").status_int == 303  # the password alone


def test_an_admin_resets_two_factor_from_the_staff_page(browser, make_staff, clock):
    make_staff("ADMIN", email="ana@example.com")
    bo = make_staff("AGENT", email="bo@example.com", name="Bo")
    log_in(browser, "bo@example.com")
    enrol_on_the_page(browser, clock)
    log_in(browser, "ana@example.com")
    page = browser.get(f"/users/{bo['id']}")
    assert "On (10 recovery codes left)" in page.text
    done = form_to(page, f"/users/{bo['id']}/two-factor/reset").submit()
    assert done.headers["Location"] == f"/users/{bo['id']}?saved=two-factor-reset"
    page = done.follow()
    assert "was reset" in page.text
    assert f"/users/{bo['id']}/two-factor/reset" not in page.text  # off: nothing to reset
    assert log_in(browser, "bo@example.com").status_int == 303


@pytest.mark.parametrize("policy", ["admin", "all"])
def test_a_covered_user_is_led_to_enrolment(settings, db, make_staff, clock, policy):
    browser = make_browser(settings, db, clock, require_2fa_for=policy)
    make_staff("ADMIN", email="ana@example.com")
    resp = log_in(browser, "ana@example.com")
    assert resp.status_int == 303
    assert resp.headers["Location"] == "/account/two-factor"
    assert browser.get("/login").headers["Location"] == "/account/two-factor"
    blocked = browser.get("/tickets", status=403)
    assert "must use two-factor authentication" in blocked.text
    assert 'href="/account/two-factor"' in blocked.text
    page = browser.get("/account/two-factor")
    assert "Your account must use two-factor authentication" in page.text
    enrol_on_the_page(browser, clock)
    assert browser.get("/tickets").status_int == 200
    page = browser.get("/account/two-factor")
    assert "cannot be turned off" in page.text
    assert "/account/two-factor/disable" not in page.text
