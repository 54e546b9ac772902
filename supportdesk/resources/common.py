"""Small helpers shared by resources: reading input and rendering pages."""

from __future__ import annotations

from typing import Any

import falcon
import jinja2

from supportdesk.auth import TokenService
from supportdesk.errors import BadRequest


def json_object(req: falcon.Request) -> dict[str, Any]:
    """The JSON body, which must be an object."""
    body = req.get_media()
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def form_data(req: falcon.Request) -> dict[str, Any]:
    """A urlencoded form's fields (the last value of a repeated field wins)."""
    form = req.get_media(default_when_empty={})
    if not isinstance(form, dict):
        raise BadRequest("The form could not be read.")
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in form.items()}


def safe_next(target: object, default: str) -> str:
    """Only redirect within this site: a path, never `//host` or a full URL."""
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return default


class Pages:
    """Renders templates with what every staff page shows (who is logged in, CSRF token)."""

    def __init__(self, templates: jinja2.Environment, tokens: TokenService):
        self.templates = templates
        self.tokens = tokens

    def render(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> None:
        session = getattr(req.context, "session", None)
        resp.status = status
        resp.content_type = falcon.MEDIA_HTML
        resp.text = self.templates.get_template(template).render(
            current_user=getattr(req.context, "user", None),
            csrf_token=self.tokens.csrf_token(session) if session else "",
            request_path=req.path,
            **context,
        )
