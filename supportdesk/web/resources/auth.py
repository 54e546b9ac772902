"""Logging in and out: the JSON API and the login page."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import falcon

from supportdesk.accounts.auth import Session
from supportdesk.accounts.sessions import SessionService
from supportdesk.accounts.staff import User, public_user
from supportdesk.core.errors import (
    AppError,
    BadRequest,
    Forbidden,
    RateLimited,
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


def _start_session(
    resp: falcon.Response, sessions: SessionService, token: str, secure: bool
) -> None:
    """The session cookie of a fresh login, living as long as its token."""
    set_session_cookie(resp, token, int(sessions.tokens.ttl.total_seconds()), secure)


class _SessionAnswer:
    """An API call that starts a session: the cookie, and the token in the body."""

    def __init__(self, sessions: SessionService, secure_cookies: bool):
        self.sessions = sessions
        self.secure = secure_cookies

    def answer(self, resp: falcon.Response, token: str, session: Session, user: User) -> None:
        _start_session(resp, self.sessions, token, self.secure)
        resp.media = {
            "token": token,
            "token_type": "Bearer",
            "expires_at": session.expires_at.isoformat(),
            "csrf_token": self.sessions.tokens.csrf_token(session),
            "user": public_user(user),
        }


class LoginResource(_SessionAnswer):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_object(req)
        self.answer(
            resp,
            *self.sessions.login(
                body.get("email"), body.get("password"), req.context.client_address
            ),
        )


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
        self.answer(resp, *changed)


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
        self.sessions.logout(req.context.session)
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
    """The login form. It carries a double-submit token (cookie + field) against login CSRF."""

    def __init__(self, sessions: SessionService, pages: Pages, secure_cookies: bool):
        self.sessions = sessions
        self.pages = pages
        self.secure = secure_cookies

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.context.user is not None:
            raise falcon.HTTPSeeOther(safe_next(req.get_param("next"), AFTER_LOGIN))
        self._form(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        expected = (req.get_cookie_values(LOGIN_CSRF_COOKIE) or [""])[0]
        if not expected or not same_secret(expected, form.get("login_csrf")):
            raise Forbidden("This login form has expired; reload the page and try again.")
        next_url = safe_next(form.get("next"), AFTER_LOGIN)
        try:
            token, _session, _user = self.sessions.login(
                form.get("email"), form.get("password"), req.context.client_address
            )
        except AppError as error:
            form_failed(req, resp, error, self._form, form=form, next_url=next_url)
            return
        _start_session(resp, self.sessions, token, self.secure)
        resp.unset_cookie(LOGIN_CSRF_COOKIE, path="/login")
        raise falcon.HTTPSeeOther(next_url)

    def _form(
        self,
        req,
        resp,
        *,
        status: int = 200,
        form: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        message: str | None = None,
        next_url: str | None = None,
    ) -> None:
        """The form; after a refused login, with one line above it: the field messages, or
        else the error's message."""
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
        )


def build(services: Services) -> dict[str, object]:
    sessions, secure = services.sessions, services.settings.secure_cookies
    return {
        "login": LoginResource(sessions, secure),
        "logout": LogoutResource(sessions, secure),
        "me": MeResource(sessions),
        "login_page": LoginPage(sessions, services.pages, secure),
        "logout_page": LogoutResource(sessions, secure, then="/login"),
        "password": PasswordResource(sessions, secure),
        "password_page": PasswordPage(sessions, services.pages, secure),
    }
