"""Small helpers shared by resources: reading input and rendering pages."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import falcon
import jinja2

from supportdesk.accounts.audit import Origin
from supportdesk.accounts.auth import TokenService
from supportdesk.core.errors import AppError, BadRequest, PayloadTooLarge, UnsupportedMediaType
from supportdesk.files.uploads import (
    FIELD,
    Upload,
    UploadLimits,
    close_all,
    read_upload,
    too_many_files,
)
from supportdesk.web.guards import CSRF_FIELD

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
    return json_from_bytes(raw)


def json_from_bytes(raw: bytes) -> dict[str, Any]:
    """A JSON object from a body already read; 400 for anything else."""
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
    """A urlencoded form's fields (the last value of a repeated field wins). Pages take
    forms only: any other body (JSON, which Falcon would parse however deeply nested) is
    refused before it is read."""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if req.content_length and media_type != falcon.MEDIA_URLENCODED:
        raise UnsupportedMediaType(
            "Send the form as application/x-www-form-urlencoded (multipart/form-data where "
            "the form takes files)."
        )
    form = req.get_media(default_when_empty={})
    if not isinstance(form, dict):
        raise BadRequest("The form could not be read.")
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in form.items()}


@dataclass
class FormInput:
    """A form's text fields and accepted files. `error` is set when a file was refused
    (413, 415, 422): the fields read before it are kept, so a page can show the form again
    as it was typed."""

    fields: dict[str, Any]
    uploads: list[Upload] = field(default_factory=list)
    error: AppError | None = None
    # Every value of each multipart text field, in order: a field may be given more than
    # once where the API takes a list (a reply's `cc`); in `fields`, the last one wins.
    repeated: dict[str, list[str]] = field(default_factory=dict)

    def raise_error(self) -> None:
        """For the API: the refusal as the error response."""
        if self.error is not None:
            raise self.error

    def __enter__(self) -> FormInput:
        return self

    def __exit__(self, *exc: object) -> None:
        """The files' temporary copies go when the request is done with them."""
        close_all(self.uploads)


def read_form(req: falcon.Request, limits: UploadLimits) -> FormInput:
    """A urlencoded form (no files) or multipart/form-data with files under `attachments`,
    each read while streaming (see supportdesk.files.uploads). A file input left empty is
    ignored; more files than the limit is a 413. Read once per request (the CSRF check
    of a multipart form reads it first)."""
    cached = getattr(req.context, "form", None)
    if cached is not None:
        return cached
    req.context.form = form = _read_form(req, limits)
    return form


def api_input(req: falcon.Request, limits: UploadLimits) -> FormInput:
    """An API body: a JSON object, or multipart/form-data with the same fields and files
    (a refused file is raised, as the error response)."""
    if is_multipart(req):
        form = read_form(req, limits)
        form.raise_error()
        form.fields.pop(CSRF_FIELD, None)  # checked by the middleware, not an API field
        return form
    return FormInput(json_object(req))


def is_multipart(req: falcon.Request) -> bool:
    return (req.content_type or "").split(";")[0].strip().lower() == falcon.MEDIA_MULTIPART


def _read_form(req: falcon.Request, limits: UploadLimits) -> FormInput:
    if not is_multipart(req):
        return FormInput(form_data(req))
    max_bytes, max_files = limits.max_bytes, limits.max_files
    form = FormInput({})
    try:
        for part in req.get_media():
            if part.name == FIELD and part.filename is not None:
                upload = read_upload(part, max_bytes, empty_ok=not part.filename)
                if upload is None:
                    continue  # a file input left empty: nothing was chosen
                if len(form.uploads) >= max_files:
                    upload.close()
                    raise too_many_files(max_files)
                form.uploads.append(upload)
            elif part.name:
                form.fields[part.name] = part.get_text() or ""
                form.repeated.setdefault(part.name, []).append(form.fields[part.name])
    except AppError as error:
        close_all(form.uploads)
        req.bounded_stream.exhaust()  # the rest of the body, so the connection stays usable
        return FormInput(form.fields, [], error)
    except (falcon.MediaMalformedError, UnicodeDecodeError, ValueError):
        # Falcon decodes part headers without catching a byte that is not text.
        close_all(form.uploads)
        raise BadRequest("The form could not be read.") from None
    return form


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


def form_failed(
    req: falcon.Request,
    resp: falcon.Response,
    error: AppError,
    show: Callable[..., None],
    *,
    form: Mapping[str, Any] | None = None,
    **context: Any,
) -> None:
    """A form the service refused, shown again in place of the redirect of a success.

    `show` is the page's render method (or `Pages.render`, given a `template`), called with
    `status` (the error's: 422 for a validation failure), `errors` (its field messages),
    `message` (its message), `form` (what was typed, when given: never a password, which
    the browser asks for again) and `context`, which adds to those or replaces them. The
    error's headers (Retry-After) are sent as its error page would send them.
    """
    resp.set_headers(error.headers)
    refused: dict[str, Any] = {
        "status": error.status,
        "errors": error.details,
        "message": error.message,
    }
    if form is not None:
        refused["form"] = {name: v for name, v in form.items() if "password" not in name}
    show(req, resp, **(refused | context))


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


def origin_of(req: falcon.Request) -> Origin:
    """Who acts in this request and from where, for the audit log (accounts/audit.py): the
    signed-in staff member (if any), the client's address (a rate-limit bucket such as an
    IPv6 /64 is kept as that network; anything unreadable as none) and the request id."""
    user = getattr(req.context, "user", None)
    address = getattr(req.context, "client_address", None)
    try:
        client_ip = str(ipaddress.ip_network(address, strict=False)) if address else None
    except ValueError:
        client_ip = None
    if client_ip and client_ip.endswith(("/32", "/128")):
        client_ip = client_ip.rsplit("/", 1)[0]
    return Origin(
        actor_id=user["id"] if user else None,
        client_ip=client_ip,
        request_id=getattr(req.context, "request_id", None),
    )
