"""Small helpers shared by resources: reading input and rendering pages."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import falcon
import jinja2

from supportdesk.auth import TokenService
from supportdesk.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_JSON_BYTES = 1024 * 1024  # far above any JSON body of this API (a ticket is < 60 KB)


def json_object(req: falcon.Request) -> dict[str, Any]:
    """The JSON body, which must be an object, sent as application/json.

    Only JSON: a form-encoded body (which any web page can make a browser send across
    sites) is refused with 415, so API routes cannot be driven by cross-site forms.
    """
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Send the request body as application/json.")
    raw = req.bounded_stream.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise PayloadTooLarge(f"The request body is larger than {MAX_JSON_BYTES:,} bytes.")
    if not raw.strip():
        raise BadRequest("The request body is empty.")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # malformed, not UTF-8, or nested too deeply
        raise BadRequest("The request body is not valid JSON.") from None
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
    """Only redirect within this site: a path like `/tickets?x=1`, never `//host`, a full
    URL, or anything with spaces, control characters or backslashes (browsers drop or
    rewrite those, turning `/\t/evil.example` into `//evil.example`)."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return default
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return default
    return target


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
