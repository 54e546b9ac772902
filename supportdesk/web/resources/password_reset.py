"""Password reset by email (DESIGN.md section 13): the JSON API and the two pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.accounts.password_resets import RESET_TTL, PasswordResets
from supportdesk.core.errors import ValidationFailed
from supportdesk.web.resources.common import (
    Pages,
    form_data,
    form_failed,
    json_object,
    origin_of,
)

if TYPE_CHECKING:
    from supportdesk.web.services import Services

MINUTES = int(RESET_TTL.total_seconds() // 60)


class ResetRequestResource:
    """Always 202 with the same body, whatever the address (and past the rate limits)."""

    def __init__(self, resets: PasswordResets):
        self.resets = resets

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.resets.request(json_object(req), origin_of(req))
        resp.status = falcon.HTTP_202


class ResetConfirmResource:
    """Sets the new password; every session of the user ends, so there is no session to
    give back: the user logs in with the new password."""

    def __init__(self, resets: PasswordResets):
        self.resets = resets

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.resets.confirm(json_object(req), origin_of(req))
        resp.media = {"status": "password_set", "message": "Your password was set; log in."}


class ForgotPasswordPage:
    """ "Forgot your password?": the address, then the same answer for every address."""

    def __init__(self, resets: PasswordResets, pages: Pages):
        self.resets = resets
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.render(
            req, resp, "password_forgot.html", errors={}, email="", sent=req.get_param("sent")
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        try:
            self.resets.request({"email": form.get("email")}, origin_of(req))
        except ValidationFailed as error:
            show = self.pages.render
            form_failed(
                req,
                resp,
                error,
                show,
                template="password_forgot.html",
                email=str(form.get("email") or ""),
                sent=None,
            )
            return
        raise falcon.HTTPSeeOther("/password-reset?sent=1")


class SetPasswordPage:
    """What the emailed link opens: the new password, twice over no JavaScript."""

    def __init__(self, resets: PasswordResets, pages: Pages):
        self.resets = resets
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # The token is in this page's address: no other site may be told it.
        resp.set_header("Referrer-Policy", "no-referrer")
        token = req.get_param("token") or ""
        errors = {}
        try:
            self.resets.check_usable(token)
        except ValidationFailed as error:
            errors = dict(error.fields)
        self.pages.render(
            req,
            resp,
            "password_set.html",
            status=422 if errors else 200,
            token=token,
            errors=errors,
            minutes=MINUTES,
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Referrer-Policy", "no-referrer")
        form = form_data(req)
        token = str(form.get("token") or "")
        try:
            self.resets.confirm(
                {"token": token, "new_password": form.get("new_password")}, origin_of(req)
            )
        except ValidationFailed as error:
            show = self.pages.render
            form_failed(
                req, resp, error, show, template="password_set.html", token=token, minutes=MINUTES
            )
            return
        raise falcon.HTTPSeeOther("/login?notice=password_set")


def build(services: Services) -> dict[str, object]:
    resets, pages = services.password_resets, services.pages
    return {
        "password_reset": ResetRequestResource(resets),
        "password_reset_confirm": ResetConfirmResource(resets),
        "password_forgot_page": ForgotPasswordPage(resets, pages),
        "password_set_page": SetPasswordPage(resets, pages),
    }
