"""Two-factor authentication (DESIGN.md section 13): one's own, as JSON and as the account
page's section, and an ADMIN's reset of someone else's. The login's code step is in
`resources/auth.py`, beside the password step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.accounts.two_factor import TwoFactorService
from supportdesk.core.errors import AppError
from supportdesk.web.resources.common import Pages, form_data, form_failed, json_object, origin_of

if TYPE_CHECKING:
    from supportdesk.web.services import Services

PAGE = "/account/two-factor"


class MyTwoFactorResource:
    """GET the state; POST starts an enrolment; DELETE turns it off."""

    def __init__(self, two_factor: TwoFactorService):
        self.two_factor = two_factor

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.two_factor.status(req.context.user)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.two_factor.start(req.context.user).public()

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.two_factor.disable(
            req.context.user, json_object(req), req.context.client_address, origin_of(req)
        )
        resp.status = falcon.HTTP_204


class MyTwoFactorConfirmResource:
    def __init__(self, two_factor: TwoFactorService):
        self.two_factor = two_factor

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        codes = self.two_factor.confirm(req.context.user, json_object(req), origin_of(req))
        resp.media = {"recovery_codes": codes}


class UserTwoFactorResource:
    """An ADMIN resets another user's two-factor."""

    def __init__(self, two_factor: TwoFactorService):
        self.two_factor = two_factor

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        self.two_factor.reset(req.context.user, user_id, origin_of(req))
        resp.status = falcon.HTTP_204


class TwoFactorPage:
    """The account page's two-factor section: its state; POST starts an enrolment and shows
    the QR code, the secret as text and the confirm form."""

    def __init__(self, two_factor: TwoFactorService, pages: Pages):
        self.two_factor = two_factor
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.user
        self.show(req, resp, enrolment=self.two_factor.started(user), done=req.get_param("done"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form_data(req)  # a form, its CSRF token checked by the middleware
        try:
            enrolment = self.two_factor.start(req.context.user)
        except AppError as error:
            form_failed(req, resp, error, self.show)
            return
        self.show(req, resp, enrolment=enrolment)

    def show(self, req, resp, *, status=200, errors=None, message=None, **context) -> None:
        context = {"enrolment": None, "recovery_codes": None, "done": None} | context
        self.pages.render(
            req,
            resp,
            "two_factor.html",
            status=status,
            state=self.two_factor.status(req.context.user),
            errors=errors or {},
            message=message,
            **context,
        )


class TwoFactorConfirmPage:
    """The code of a started enrolment: two-factor on, the recovery codes shown this once."""

    def __init__(self, two_factor: TwoFactorService, page: TwoFactorPage):
        self.two_factor = two_factor
        self.page = page

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user = req.context.user
        try:
            codes = self.two_factor.confirm(
                user, {"code": form_data(req).get("code")}, origin_of(req)
            )
        except AppError as error:
            enrolment = self.two_factor.started(user)
            form_failed(req, resp, error, self.page.show, enrolment=enrolment)
            return
        self.page.show(req, resp, recovery_codes=codes)


class TwoFactorOffPage:
    def __init__(self, two_factor: TwoFactorService, page: TwoFactorPage):
        self.two_factor = two_factor
        self.page = page

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        given = {"password": form.get("password"), "code": form.get("code")}
        try:
            self.two_factor.disable(
                req.context.user, given, req.context.client_address, origin_of(req)
            )
        except AppError as error:
            form_failed(req, resp, error, self.page.show)
            return
        raise falcon.HTTPSeeOther(f"{PAGE}?done=off")


class UserTwoFactorResetPage:
    """The staff member's page's Reset two-factor button (ADMIN)."""

    def __init__(self, two_factor: TwoFactorService):
        self.two_factor = two_factor

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        form_data(req)
        self.two_factor.reset(req.context.user, user_id, origin_of(req))
        raise falcon.HTTPSeeOther(f"/users/{user_id}?saved=two-factor-reset")


def build(services: Services) -> dict[str, object]:
    two_factor = services.two_factor
    page = TwoFactorPage(two_factor, services.pages)
    return {
        "my_two_factor": MyTwoFactorResource(two_factor),
        "my_two_factor_confirm": MyTwoFactorConfirmResource(two_factor),
        "user_two_factor": UserTwoFactorResource(two_factor),
        "two_factor_page": page,
        "two_factor_confirm_page": TwoFactorConfirmPage(two_factor, page),
        "two_factor_off_page": TwoFactorOffPage(two_factor, page),
        "user_two_factor_reset_page": UserTwoFactorResetPage(two_factor),
    }
