"""The one serializer for every error response (DESIGN.md section 5).

Services raise the errors of `supportdesk.core.errors`; `register_error_handlers` maps them,
Falcon's own HTTP errors, a database or Redis outage and any unexpected exception to the JSON
envelope under `/api` (and for API clients elsewhere) or to an HTML page for browsers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import falcon
import jinja2
import psycopg
import psycopg_pool
import redis

from supportdesk.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    InternalError,
    LengthRequired,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from supportdesk.files.storage import StorageUnavailable

log = logging.getLogger("supportdesk.web.errors")


# Falcon's own errors, mapped to our codes by status. Falcon's titles and descriptions are
# written for developers; the messages here are written for users.
_FALCON_STATUS_MAP: dict[int, type[AppError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    411: LengthRequired,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_body(error: AppError, request_id: str) -> dict[str, Any]:
    """The envelope: the only shape any error response has."""
    return {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "request_id": request_id,
        }
    }


def from_falcon(ex: falcon.HTTPError) -> AppError:
    """Translate one of Falcon's HTTP errors (routing, media parsing) to an AppError."""
    status = ex.status_code
    kind = _FALCON_STATUS_MAP.get(status)
    headers = dict(ex.headers or {})
    if isinstance(ex, falcon.MediaMalformedError):
        return BadRequest("The request body is not valid JSON.")
    if isinstance(ex, falcon.MediaNotFoundError):
        return BadRequest("The request body is empty.")
    if kind is None:
        error = AppError(headers=headers)
        error.status, error.code = status, "http_error"
        error.message = ex.title or "The request could not be processed."
        return error
    if kind is RateLimited:
        return RateLimited(int(headers.get("Retry-After", "1")))
    if kind is ValidationFailed:
        return ValidationFailed({}, ex.description or None)
    error = kind(headers=headers)
    if kind is BadRequest and ex.description:
        # Falcon's 400 descriptions (e.g. a bad query parameter) say which input was wrong.
        error.message = ex.description
    return error


def _back_after_login(req: falcon.Request) -> str:
    """Where the browser goes after logging in: the page it asked for; after a form post
    (which cannot be replayed), the page the form was on, when that was this site."""
    if req.method in ("GET", "HEAD"):
        return req.relative_uri
    referer = urlsplit(req.get_header("Referer") or "")
    try:
        port = referer.port or (443 if referer.scheme == "https" else 80)
    except ValueError:  # a malformed port in someone else's header
        return "/tickets"
    same_site = referer.hostname == req.host and port == req.port
    if same_site and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/tickets"


def wants_html(req: falcon.Request) -> bool:
    """Pages get HTML errors; the API and non-browser clients get JSON."""
    if req.path.startswith("/api/") or req.path == "/api" or req.path == "/healthz":
        return False
    # Browsers ask for HTML; a client that prefers JSON gets JSON on a page's URL too.
    return req.client_prefers(("text/html", "application/json")) == "text/html"


class ErrorRenderer:
    """Writes an AppError to the response as JSON or as an HTML page."""

    def __init__(
        self,
        templates: jinja2.Environment,
        csrf_token: Callable[[Any], str],
        identify: Callable[[falcon.Request], None],
    ):
        self.templates = templates
        self.csrf_token = csrf_token  # of a session: the header's logout form needs it
        self.identify = identify  # who is logged in, when no route (no guard) ran

    def render(self, req: falcon.Request, resp: falcon.Response, error: AppError) -> None:
        request_id = getattr(req.context, "request_id", "-")
        resp.status = error.status
        for name, value in error.headers.items():
            resp.set_header(name, value)
        if wants_html(req) and isinstance(error, Unauthenticated):
            # A page that needs a login sends the browser to the login form and back.
            resp.status = falcon.HTTP_303
            resp.location = "/login?" + urlencode({"next": _back_after_login(req)})
            resp.text = ""
            return
        if wants_html(req):
            resp.content_type = falcon.MEDIA_HTML
            # Whoever is logged in still sees their own header (and can log out from it).
            if not hasattr(req.context, "user"):
                self.identify(req)
            user = getattr(req.context, "user", None)
            session = getattr(req.context, "session", None)
            resp.text = self.templates.get_template("error.html").render(
                error=error,
                request_id=request_id,
                current_user=user,
                csrf_token=self.csrf_token(session) if user and session else "",
                request_path=req.path,
            )
        else:
            resp.content_type = falcon.MEDIA_JSON
            resp.media = error_body(error, request_id)

    # The handlers Falcon calls: (req, resp, exception, params).

    def handle_app_error(self, req, resp, ex: AppError, params) -> None:
        self.render(req, resp, ex)

    def handle_http_error(self, req, resp, ex: falcon.HTTPError, params) -> None:
        self.render(req, resp, from_falcon(ex))

    def handle_unavailable(self, req, resp, ex: Exception, params) -> None:
        log.error(
            "dependency unavailable request_id=%s %s %s: %r",
            getattr(req.context, "request_id", "-"),
            req.method,
            req.path,
            ex,
        )
        self.render(req, resp, ServiceUnavailable())

    def handle_unexpected(self, req, resp, ex: Exception, params) -> None:
        log.exception(
            "unhandled error request_id=%s %s %s",
            getattr(req.context, "request_id", "-"),
            req.method,
            req.path,
        )
        self.render(req, resp, InternalError())


def register_error_handlers(app: falcon.App, renderer: ErrorRenderer) -> None:
    # Falcon picks the most specific handler by the exception's class hierarchy.
    app.add_error_handler(Exception, renderer.handle_unexpected)
    app.add_error_handler(
        (
            psycopg.OperationalError,
            psycopg_pool.PoolTimeout,
            redis.ConnectionError,
            redis.TimeoutError,
            StorageUnavailable,
        ),
        renderer.handle_unavailable,
    )
    app.add_error_handler(falcon.HTTPError, renderer.handle_http_error)
    app.add_error_handler(AppError, renderer.handle_app_error)
