"""Logging in and out: the JSON API and the login page, with the code step of an account
with two-factor on (the password step answers a challenge; the code step finishes)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import falcon

from supportdesk.accounts.auth import Challenge, Session
from supportdesk.accounts.sessions import LoginStep, SessionService
from supportdesk.accounts.staff import User, public_user
from supportdesk.accounts.two_factor import covered
from supportdesk.core.errors import (
    AppError,
    BadRequest,
    Forbidden,
    RateLimited,
    Unauthenticated,
    ValidationFailed,
)
from supportdesk.core.signing import same_secret
from supportdesk.web.guards import clear_session_cookie, set_session_cookie
from supportdesk.web.resources.common import (
    Pages,
    form_data,
    form_failed,
    json_object,
    origin_of,
    safe_next,
)

if TYPE_CHECKING:
    from supportdesk.web.services import Services

LOGIN_CSRF_COOKIE = "login_csrf"
AFTER_LOGIN = "/tickets"
ENROL_PAGE = "/account/two-factor"


def _start_session(
    resp: falcon.Response, sessions: SessionService, token: str, secure: bool
) -> None:
    """The session cookie of a fresh login, living as long as its token."""
    set_session_cookie(resp, token, int(sessions.tokens.ttl.total_seconds()), secure)


class _SessionAnswer:
    """An API call that starts a session: the cookie, and the token in the body."""

    def __init__(self, sessions: SessionService, secure_cookies: bool, require_2fa_for: str):
        self.sessions = sessions
        self.secure = secure_cookies
        self.policy = require_2fa_for

    def answer(
        self,
        resp: falcon.Response,
        token: str,
        session: Session,
        user: User,
        *,
        two_factor_on: bool = False,
    ) -> None:
        _start_session(resp, self.sessions, token, self.secure)
        resp.media = {
            "token": token,
            "token_type": "Bearer",
            "expires_at": session.expires_at.isoformat(),
            "csrf_token": self.sessions.tokens.csrf_token(session),
            "user": public_user(user),
            "must_enrol": covered(self.policy, user["role"]) and not two_factor_on,
        }


class LoginResource(_SessionAnswer):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req)
        step = self.sessions.login(
            body.get("email"), body.get("password"), req.context.client_address, origin_of(req)
        )
        if isinstance(step, Challenge):
            resp.media = {
                "two_factor": "required",
                "challenge": step.token,
                "expires_at": step.expires_at.isoformat(),
            }
            return
        self.answer(resp, *step)


class LoginCodeResource(_SessionAnswer):
    """The second step of a login with two-factor on."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req)
        done = self.sessions.login_with_code(
            body.get("challenge"), body.get("code"), req.context.client_address, origin_of(req)
        )
        self.answer(resp, *done, two_factor_on=True)


class PasswordResource(_SessionAnswer):
    """A user's own password: the other sessions end, this one is re-issued."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req)
        changed = self.sessions.change_password(
            req.context.session,
            body.get("current_password"),
            body.get("new_password"),
            req.context.client_address,
            origin_of(req),
        )
        self.answer(resp, *changed, two_factor_on=req.context.user["two_factor_on"])


class PasswordPage:
    def __init__(self, sessions: SessionService, pages: Pages, secure_cookies: bool):
        self.sessions = sessions
        self.pages = pages
        self.secure = secure_cookies

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.render(req, resp, "password.html", errors={}, done=req.get_param("done"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        try:
            token, _session, _user = self.sessions.change_password(
                req.context.session,
                form.get("current_password"),
                form.get("new_password"),
                req.context.client_address,
                origin_of(req),
            )
        except (ValidationFailed, RateLimited) as error:
            # Too many wrong tries names no field: say it by the current password.
            errors = error.details or {"current_password": error.message}
            show = self.pages.render
            form_failed(req, resp, error, show, template="password.html", errors=errors, done=None)
            return
        _start_session(resp, self.sessions, token, self.secure)
        raise falcon.HTTPSeeOther("/account/password?done=1")


class LogoutResource:
    """Ends this session: the API answers 204, the page (`then`) goes on to the login page."""

    def __init__(self, sessions: SessionService, secure_cookies: bool, then: str | None = None):
        self.sessions = sessions
        self.secure = secure_cookies
        self.then = then

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.context.via == "api_token":
            raise BadRequest(
                "An API token is not a session: revoke it with DELETE /api/me/tokens/{id}."
            )
        self.sessions.logout(req.context.session, origin_of(req))
        clear_session_cookie(resp, self.secure)
        if self.then:
            raise falcon.HTTPSeeOther(self.then)
        resp.status = falcon.HTTP_204


class MeResource:
    def __init__(self, sessions: SessionService):
        self.sessions = sessions

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {
            "user": public_user(req.context.user),
            "csrf_token": self.sessions.tokens.csrf_token(req.context.session),
        }


class LoginPage:
    """The login form. It carries a double-submit token (cookie + field) against login CSRF.
    For an account with two-factor on, a right password shows the code step, which posts
    to /login/2fa (`LoginCodePage`) with the challenge."""

    def __init__(
        self, sessions: SessionService, pages: Pages, secure_cookies: bool, require_2fa_for: str
    ):
        self.sessions = sessions
        self.pages = pages
        self.secure = secure_cookies
        self.policy = require_2fa_for

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.user
        if user is not None:
            if user["must_enrol"]:
                raise falcon.HTTPSeeOther(ENROL_PAGE)
            raise falcon.HTTPSeeOther(safe_next(req.get_param("next"), AFTER_LOGIN))
        self.form(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = self.checked_form(req)
        next_url = safe_next(form.get("next"), AFTER_LOGIN)
        try:
            step = self.sessions.login(
                form.get("email"), form.get("password"), req.context.client_address, origin_of(req)
            )
        except AppError as error:
            form_failed(req, resp, error, self.form, form=form, next_url=next_url)
            return
        if isinstance(step, Challenge):
            self.form(req, resp, challenge=step.token, next_url=next_url)
            return
        self.logged_in(resp, step, next_url, two_factor_on=False)

    @staticmethod
    def checked_form(req: falcon.Request) -> dict[str, str]:
        form = form_data(req)
        expected = (req.get_cookie_values(LOGIN_CSRF_COOKIE) or [""])[0]
        if not expected or not same_secret(expected, form.get("login_csrf")):
            raise Forbidden("This login form has expired; reload the page and try again.")
        return form

    def logged_in(
        self, resp: falcon.Response, step: LoginStep, next_url: str, *, two_factor_on: bool
    ) -> None:
        """The session cookie, and on: to where the login was going, or to enrolment for an
        account that REQUIRE_2FA_FOR covers and that has no two-factor yet."""
        assert not isinstance(step, Challenge)
        token, _session, user = step
        _start_session(resp, self.sessions, token, self.secure)
        resp.unset_cookie(LOGIN_CSRF_COOKIE, path="/login")
        if covered(self.policy, user["role"]) and not two_factor_on:
            raise falcon.HTTPSeeOther(ENROL_PAGE)
        raise falcon.HTTPSeeOther(next_url)

    def form(
        self,
        req,
        resp,
        *,
        status: int = 200,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        message: str | None = None,
        next_url: str | None = None,
        challenge: str | None = None,
    ) -> None:
        """The form (the code step when there is a `challenge`); after a refused login, with
        one line above it: the field messages, or else the error's message."""
        error = " ".join(str(v) for v in errors.values()) if errors else message
        login_csrf = secrets.token_urlsafe(24)
        resp.set_cookie(
            LOGIN_CSRF_COOKIE,
            login_csrf,
            max_age=3600,
            path="/login",
            secure=self.secure,
            http_only=True,
            same_site="Strict",
        )
        self.pages.render(
            req,
            resp,
            "login.html",
            status=status,
            email=str((form or {}).get("email", "")),
            error=error,
            login_csrf=login_csrf,
            next_url=next_url or safe_next(req.get_param("next"), AFTER_LOGIN),
            password_set=req.get_param("notice") == "password_set",
            challenge=challenge,
        )


class LoginCodePage:
    """The login page's code step. A wrong code shows it again (the same challenge); an
    expired or forged challenge goes back to the password step."""

    def __init__(self, login_page: LoginPage):
        self.login_page = login_page
        self.sessions = login_page.sessions

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.login_page
        form = page.checked_form(req)
        next_url = safe_next(form.get("next"), AFTER_LOGIN)
        challenge = form.get("challenge")
        try:
            step = self.sessions.login_with_code(
                challenge, form.get("code"), req.context.client_address, origin_of(req)
            )
        except Unauthenticated as error:
            form_failed(req, resp, error, page.form, next_url=next_url)
            return
        except AppError as error:
            form_failed(req, resp, error, page.form, next_url=next_url, challenge=challenge)
            return
        page.logged_in(resp, step, next_url, two_factor_on=True)


def build(services: Services) -> dict[str, object]:
    sessions, secure = services.sessions, services.settings.secure_cookies
    policy = services.settings.require_2fa_for
    login_page = LoginPage(sessions, services.pages, secure, policy)
    return {
        "login": LoginResource(sessions, secure, policy),
        "login_code": LoginCodeResource(sessions, secure, policy),
        "logout": LogoutResource(sessions, secure),
        "me": MeResource(sessions),
        "login_page": login_page,
        "login_code_page": LoginCodePage(login_page),
        "logout_page": LogoutResource(sessions, secure, then="/login"),
        "password": PasswordResource(sessions, secure, policy),
        "password_page": PasswordPage(sessions, services.pages, secure),
    }
