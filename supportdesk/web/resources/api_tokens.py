"""One's own API tokens (DESIGN.md section 13): the JSON API and the page."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import falcon

from supportdesk.accounts.api_tokens import ApiTokenService, public_token
from supportdesk.core.errors import ValidationFailed
from supportdesk.web.resources.common import Pages, form_data, form_failed, json_object, origin_of

if TYPE_CHECKING:
    from supportdesk.web.services import Services

# The page's choices of lifetime, in days ("" : until revoked).
LIFETIMES = {"": "Until revoked", "7": "7 days", "30": "30 days", "90": "90 days", "365": "A year"}


class ApiTokensResource:
    def __init__(self, tokens: ApiTokenService):
        self.tokens = tokens

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = self.tokens.list_tokens(req.context.user)
        resp.media = {"items": [public_token(row) for row in rows]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        row, token = self.tokens.create(req.context.user, json_object(req), origin_of(req))
        resp.media = {"api_token": public_token(row), "token": token}
        resp.status = falcon.HTTP_201


class ApiTokenResource:
    def __init__(self, tokens: ApiTokenService):
        self.tokens = tokens

    def on_delete(self, req: falcon.Request, resp: falcon.Response, token_id: int) -> None:
        self.tokens.revoke(req.context.user, token_id, origin_of(req))
        resp.status = falcon.HTTP_204


class ApiTokensPage:
    """The list, the form that makes one (its token shown on the answer, once), and a
    Revoke button per token."""

    def __init__(self, tokens: ApiTokenService, pages: Pages):
        self.tokens = tokens
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._show(req, resp, notice=req.get_param("notice"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        days = str(form.get("lifetime") or "")
        data: dict[str, object] = {"name": form.get("name") or ""}
        try:
            if days not in LIFETIMES:
                raise ValidationFailed({"lifetime": "Choose one of the lifetimes."})
            if days:
                data["expires_at"] = (self.tokens.clock() + timedelta(days=int(days))).isoformat()
            row, token = self.tokens.create(req.context.user, data, origin_of(req))
        except ValidationFailed as error:
            form_failed(req, resp, error, self._show, form=form)
            return
        # Shown in this answer only (not a redirect: the token must never be in a URL).
        self._show(req, resp, created=public_token(row), token=token, status=201)

    def _show(self, req: falcon.Request, resp: falcon.Response, **context: object) -> None:
        context.setdefault("errors", {})
        context.setdefault("form", {})
        self.pages.render(
            req,
            resp,
            "api_tokens.html",
            tokens=[public_token(row) for row in self.tokens.list_tokens(req.context.user)],
            lifetimes=LIFETIMES,
            **context,
        )


class ApiTokenRevokePage:
    def __init__(self, tokens: ApiTokenService):
        self.tokens = tokens

    def on_post(self, req: falcon.Request, resp: falcon.Response, token_id: int) -> None:
        self.tokens.revoke(req.context.user, token_id, origin_of(req))
        raise falcon.HTTPSeeOther("/account/tokens?notice=revoked")


def build(services: Services) -> dict[str, object]:
    tokens, pages = services.api_tokens, services.pages
    return {
        "my_tokens": ApiTokensResource(tokens),
        "my_token": ApiTokenResource(tokens),
        "api_tokens_page": ApiTokensPage(tokens, pages),
        "api_token_revoke_page": ApiTokenRevokePage(tokens),
    }
