"""What every refused form shows again (web.resources.common.form_failed): what was typed,
except a password, with the refusal's status, headers and messages."""

from __future__ import annotations

import pytest
import webtest

from tests.pages.test_ticket_pages import form_with_action, log_in

TYPED_PASSWORD = "Typed-pw9"  # under 10 characters, so every form below refuses it


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def _login_form(browser, staff):
    form = browser.get("/login").forms[0]
    form["email"] = staff["email"]
    form["password"] = TYPED_PASSWORD
    return form, 401


def _add_staff_form(browser, staff):
    log_in(browser, staff["email"])
    form = form_with_action(browser.get("/users"), "/users")
    form["name"] = "Cy"
    form["email"] = "cy@example.com"
    form["password"] = TYPED_PASSWORD
    return form, 422


def _edit_staff_form(browser, staff):
    log_in(browser, staff["email"])
    action = f"/users/{staff['id']}"
    form = form_with_action(browser.get(action), action)
    form["password"] = TYPED_PASSWORD
    return form, 422


def _own_password_form(browser, staff):
    log_in(browser, staff["email"])
    form = form_with_action(browser.get("/account/password"), "/account/password")
    form["current_password"] = TYPED_PASSWORD
    form["new_password"] = TYPED_PASSWORD
    return form, 422


@pytest.mark.parametrize(
    "fill", [_login_form, _add_staff_form, _edit_staff_form, _own_password_form]
)
def test_a_refused_form_never_sends_a_typed_password_back(browser, make_staff, fill):
    staff = make_staff("ADMIN", email="ana@example.com")
    form, status = fill(browser, staff)
    page = form.submit(status=status)
    assert "field-error" in page.text or "alert error" in page.text
    assert TYPED_PASSWORD not in page.text


def test_too_many_wrong_passwords_are_said_by_the_current_password_field(browser, make_staff):
    make_staff("AGENT", email="bo@example.com")
    log_in(browser, "bo@example.com")
    for _ in range(6):
        form = form_with_action(browser.get("/account/password"), "/account/password")
        form["current_password"] = "not the password at all"
        form["new_password"] = "a brand new password"
        page = form.submit(expect_errors=True)
    assert page.status_int == 429
    assert int(page.headers["Retry-After"]) > 0
    error = page.html.select_one("#current_password-error").text
    assert error.startswith("Too many failed login attempts")
