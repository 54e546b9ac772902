"""The middleware of every request: its id, its client, a bound on its body, and the
access guard.

`AuthMiddleware` enforces the route table of `supportdesk/web/routes.py` before any responder
runs, and fails closed: a method that a resource answers but the table does not declare is
refused, so a responder added without a row in the table cannot be reached.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from typing import IO, Any

import falcon

from supportdesk.accounts.api_tokens import looks_like_api_token
from supportdesk.accounts.auth import Session, TokenService
from supportdesk.accounts.two_factor import must_enrol
from supportdesk.core.clients import ClientAddresses
from supportdesk.core.errors import (
    Forbidden,
    LengthRequired,
    MethodNotAllowed,
    PayloadTooLarge,
    Unauthenticated,
)
from supportdesk.core.signing import SignedLinks, WebhookSignature
from supportdesk.files import storage
from supportdesk.files.uploads import CHUNK, SPOOL_IN_MEMORY, UploadLimits
from supportdesk.tickets.access import with_reach
from supportdesk.web.guards import (
    ANYONE,
    CSRF_FIELD,
    CSRF_HEADER,
    PROVIDER,
    SESSION_COOKIE,
    UNSAFE_METHODS,
    guard,
)
from supportdesk.web.resources.common import is_multipart, read_form

log = logging.getLogger("supportdesk.web.middleware")
# The account behind an API token and the Session standing for it (or Unauthenticated).
ApiTokenLoader = Callable[[str], tuple[Mapping[str, Any], Session]]
access_log = logging.getLogger("supportdesk.requests")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestSizeLimit:
    """Refuse a body larger than its route and content type take, before anything reads it.

    - `large`: a multipart body to a route that takes files (`takes_files` in the route
      table: all of a message's files and the form around them), and the signed inbound
      webhook (a whole email, whatever its type).
    - `text`: any other body to a route that takes files: a JSON or urlencoded message of
      the longest allowed text, escaped.
    - `small`: every other route (a login, a status change: no reason to be large, and a
      urlencoded form is parsed whole, in memory).
    """

    def __init__(
        self,
        file_routes: frozenset[tuple[str, str]],
        access: Mapping[tuple[str, str], str],
        *,
        small: int,
        text: int,
        large: int,
    ):
        self.file_routes = file_routes
        self.access = access
        self.small, self.text, self.large = small, text, large

    def limit(self, req: falcon.Request) -> int:
        route = (req.uri_template, req.method)
        if self.access.get(route) == PROVIDER:
            return self.large
        if route not in self.file_routes:
            return self.small
        return self.large if is_multipart(req) else self.text

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        limit = self.limit(req)
        if req.content_length is None and req.get_header("Transfer-Encoding"):
            # A body of unannounced length (chunked) could only be limited while read;
            # every client we serve (browsers, HTTP libraries) sends Content-Length.
            raise LengthRequired()
        if req.content_length is not None and req.content_length > limit:
            raise PayloadTooLarge(f"The request is larger than {limit:,} bytes.")


class RequestLog:
    """One structured line per request: method, path, status, duration, request id and
    user id. The path only: query strings carry signed links' signatures, and bodies carry
    passwords, so neither is ever logged (gunicorn's own access log is off for the same
    reason)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        took = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        user = getattr(req.context, "user", None)
        access_log.info(
            "method=%s path=%s status=%s duration_ms=%.1f request_id=%s user_id=%s",
            req.method,
            _loggable(req.path),
            resp.status.split(" ", 1)[0] if isinstance(resp.status, str) else resp.status,
            took,
            getattr(req.context, "request_id", "-"),
            user["id"] if user else "-",
        )


class StorageDeadline:
    """Storing a request's files stops at a deadline inside gunicorn's request timeout
    (supportdesk.files.storage: STORING_DEADLINE_SECONDS), counted from here."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.storage_deadline = storage.start_deadline()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        token = getattr(req.context, "storage_deadline", None)
        if token is not None:
            storage.end_deadline(token)


def _loggable(path: str) -> str:
    """A path as one token of a log line: no spaces or control characters from a client."""
    return "".join(ch if ch.isprintable() and not ch.isspace() else "?" for ch in path)[:300]


class RequestIdMiddleware:
    """Every request gets an id (the caller's X-Request-ID when it is sane), echoed back."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-ID") or ""
        req.context.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        request_id = getattr(req.context, "request_id", None) or uuid.uuid4().hex
        resp.set_header("X-Request-ID", request_id)


# No inline script or style, nothing from elsewhere, never framed, forms post only here;
# frames of our own only (an email's original HTML, which sets its own policy: sandboxed,
# framed by our pages alone).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class SecurityHeaders:
    """The headers every response carries, unless its resource set its own (a download's
    sandbox CSP, the customer view's stricter Referrer-Policy): a CSP without inline script,
    no framing, no sniffing, no full URLs (which name tickets) sent to other sites, and no
    copy in the browser's cache (a staff page or a login's answer must not be shown again
    from history after logout). HSTS where cookies are Secure (served over https)."""

    def __init__(self, https: bool):
        self.headers = {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        if https:
            self.headers["Strict-Transport-Security"] = "max-age=31536000"

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        for name, value in self.headers.items():
            if resp.get_header(name) is None:
                resp.set_header(name, value)
        if resp.get_header("Cache-Control") is None and not req.path.startswith("/static/"):
            resp.set_header("Cache-Control", "no-store")


class ClientAddressMiddleware:
    """`req.context.client_address`: whom rate limits count (clients.ClientAddresses)."""

    def __init__(self, addresses: ClientAddresses):
        self.addresses = addresses

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.client_address = self.addresses.client(
            req.remote_addr, req.get_header("X-Forwarded-For")
        )


def staff_loader(
    load: Callable[[Session], Mapping[str, Any] | None],
    agents_see_unassigned: bool,
    require_2fa_for: str = "none",
) -> Callable[[Session], Mapping[str, Any] | None]:
    """`load` (the account behind a session), each row marked with the tickets it reaches
    under this app's AGENTS_SEE_UNASSIGNED (tickets/access.py: the setting travels with
    the acting user, so that services need no setting of their own), and with `must_enrol`
    under REQUIRE_2FA_FOR (guards.ENROLLING)."""

    def load_user(session: Session) -> Mapping[str, Any] | None:
        user = load(session)
        if user is None:
            return None
        user = with_reach(user, agents_see_unassigned=agents_see_unassigned)
        return {**user, "must_enrol": must_enrol(require_2fa_for, user)}

    return load_user


def api_token_loader(
    authenticate: ApiTokenLoader, agents_see_unassigned: bool, require_2fa_for: str = "none"
) -> ApiTokenLoader:
    """`authenticate` (accounts.api_tokens), its user marked with its reach and with
    `must_enrol` as `staff_loader` marks a session's: a token of a user REQUIRE_2FA_FOR
    covers who has not enrolled reaches no more than that user's session would."""

    def load(token: str) -> tuple[Mapping[str, Any], Session]:
        user, session = authenticate(token)
        user = with_reach(user, agents_see_unassigned=agents_see_unassigned)
        return {**user, "must_enrol": must_enrol(require_2fa_for, user)}, session

    return load


class AuthMiddleware:
    """Authenticates the request (Bearer token or session cookie) and applies the route's
    guard before the responder runs. A Bearer token is a session's JWT or a personal API
    token (`sd_pat_...`, accounts/api_tokens.py), which is never read from the cookie.

    `access` maps (URI template, method) to who may call it. A bad or stale token on a
    route open to anyone is ignored (the public form still works after a session expired);
    elsewhere it is a 401. A cookie-authenticated state-changing request must carry the CSRF
    token; without it, the request does not act as that user.
    """

    def __init__(
        self,
        tokens: TokenService,
        load_user: Callable[[Session], Mapping[str, Any] | None],
        access: Mapping[tuple[str, str], str],
        upload_limits: UploadLimits,
        webhook: WebhookSignature,
        links: SignedLinks,
        link_purposes: Mapping[tuple[str, str], str],
        api_token_user: ApiTokenLoader | None = None,
    ):
        self.tokens = tokens
        self.load_user = load_user
        # Personal API tokens (`sd_pat_...`, DESIGN.md section 13), as Bearer only.
        self.api_token_user = api_token_user
        self.access = access
        self.upload_limits = upload_limits
        self.webhook = webhook
        self.links = links
        self.link_purposes = link_purposes

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        req.context.user = None
        req.context.session = None
        if resource is None:
            return  # no route: a static file, or Falcon's 404
        who = self.access.get((req.uri_template, req.method))
        if who is None:
            # Fail closed: whatever the resource would answer to an undeclared method
            # (a responder added without a row in the route table, Falcon's default
            # OPTIONS), nobody reaches it.
            allowed = sorted(m for (t, m) in self.access if t == req.uri_template)
            raise MethodNotAllowed(headers={"Allow": ", ".join(allowed)})
        if who == PROVIDER:
            # Signed by the mail provider, not a staff session: the resource gets the body
            # only once its signature is verified.
            req.context.signed_body = self._verified_body(req)
            req.context.user = req.context.session = req.context.via = None
            return
        signed = self._signed_link(req, params)
        # Where anyone may come, or a link opens the door, a stale session is ignored.
        open_door = who == ANYONE or signed
        token, via = self._credentials(req)
        user, session = None, None
        if token is not None:
            try:
                user, session, via = self._authenticate(token, via)
            except Unauthenticated:
                if not open_door:
                    raise
                user, session = None, None
        if user is not None and via == "cookie" and req.method in UNSAFE_METHODS:
            assert session is not None
            if not self.tokens.csrf_valid(session, self._csrf_candidate(req)):
                if not open_door:
                    raise Forbidden(
                        "Your form has expired or did not come from this site; reload the page "
                        "and try again.",
                        details={"csrf": "missing or invalid CSRF token"},
                    )
                user, session = None, None
        req.context.user = user
        req.context.session = session
        req.context.via = via if user is not None else None
        guard(who, user, signed_link=signed)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        body = getattr(req.context, "signed_body", None)
        if body is not None:
            body.close()  # the webhook's spool: its temporary file, if it grew one, goes

    def _verified_body(self, req: falcon.Request) -> IO[bytes]:
        """The webhook's body, at its start, if its signature is right; else Unauthenticated.

        Headers that cannot be right are refused before a byte of the body is read. The
        body (up to the route's limit, tens of MB) then streams through the HMAC in chunks
        into a spooled file, in memory up to 1 MiB and on disk beyond: a body that is not
        signed is never held in memory, and the spool goes as soon as it is refused."""
        timestamp, signature = req.get_header("X-Timestamp"), req.get_header("X-Signature")
        mac = self.webhook.start(timestamp, signature)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            while chunk := req.bounded_stream.read(CHUNK):
                mac.update(chunk)
                spool.write(chunk)
            self.webhook.finish(mac, signature)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    def identify_quietly(self, req: falcon.Request) -> None:
        """Who is logged in, for a request no route took (its error page shows their
        header); nobody if the credentials are missing or not valid."""
        req.context.user = req.context.session = None
        token, via = self._credentials(req)
        if token is None:
            return
        try:
            req.context.user, req.context.session, _ = self._authenticate(token, via)
        except Unauthenticated:
            pass
        except Exception as ex:  # the database is down: the error page is shown anyway
            log.warning("error page shown as anonymous, the user could not be read: %r", ex)

    def _signed_link(self, req: falcon.Request, params: dict[str, Any]) -> bool:
        """Whether the request carries a valid link for this route (NotFound if it
        carries one that is not valid: expired, or signed for something else)."""
        purpose = self.link_purposes.get((req.uri_template, req.method))
        if purpose is None or req.get_param("sig") is None:
            return False
        [subject] = params.values()
        self.links.check(purpose, str(subject), req.get_param("expires"), req.get_param("sig"))
        req.context.signed_link = True
        return True

    def _authenticate(
        self, token: str, via: str | None
    ) -> tuple[Mapping[str, Any], Session, str | None]:
        """(user, session, how it came) for a credential; Unauthenticated if it is not
        valid. An API token counts only as a Bearer token: in a cookie it is no JWT, and
        fails as one. It needs no CSRF token (`via` is then "api_token")."""
        if via == "bearer" and self.api_token_user is not None and looks_like_api_token(token):
            user, session = self.api_token_user(token)
            return user, session, "api_token"
        session = self.tokens.verify(token)
        return self._current_user(session), session, via

    def _current_user(self, session: Session) -> Mapping[str, Any]:
        user = self.load_user(session)
        if user is None or not user["is_active"]:
            raise Unauthenticated("Your account is not active.")
        if user["session_revoked"]:
            raise Unauthenticated("You have logged out; please log in again.")
        if user["token_version"] != session.token_version:
            raise Unauthenticated("Your session has ended; please log in again.")
        return user

    @staticmethod
    def _credentials(req: falcon.Request) -> tuple[str | None, str | None]:
        header = req.get_header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), "bearer"
        cookie = req.get_cookie_values(SESSION_COOKIE)
        if cookie and cookie[0]:
            return cookie[0], "cookie"
        return None, None

    def _csrf_candidate(self, req: falcon.Request) -> str | None:
        header = req.get_header(CSRF_HEADER)
        if header:
            return header
        if req.content_type and req.content_type.startswith(falcon.MEDIA_URLENCODED):
            form = req.get_media(default_when_empty={})
            value = form.get(CSRF_FIELD) if isinstance(form, dict) else None
            return value if isinstance(value, str) else None
        if is_multipart(req):
            # A form with files: read here (once; the resource gets the same reading), so
            # that its token is checked before any responder runs.
            value = read_form(req, self.upload_limits).fields.get(CSRF_FIELD)
            return value if isinstance(value, str) else None
        return None
