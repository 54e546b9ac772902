"""An OAuth 2.0 authorization server of the tests' own, on 127.0.0.1, in a thread.

It plays Microsoft's or Google's part for real, over HTTP, so that the desk's flow, its
refreshes and the XOAUTH2 logins are checked by a server, not by the code under test:

- `/authorize` (GET) checks client_id, redirect_uri, scope and the PKCE challenge (S256)
  and records the request; a test then "clicks Accept" (`accept(url, username)`) or
  "Cancel" (`deny(url)`), which answers as the provider would: a redirect to the
  redirect_uri carrying `code` and `state`, or `error=access_denied`.
- `/token` grants `authorization_code` (verifying the PKCE verifier against the challenge,
  the client's secret and the redirect_uri) and `refresh_token`. Switches: `rotate`
  (each refresh issues a new refresh token and retires the old one, as Microsoft does),
  `revoke(username)` (refreshes answer `invalid_grant`), `down` (500).
- `/introspect` (RFC 7662): `{active, username, exp}` for an access token; Dovecot's
  `oauth2` passdb asks it (tests/imapserver.py), and so does `XOAuth2SmtpServer` below, an
  aiosmtpd server whose AUTH XOAUTH2 is checked against it.

Access tokens are random and expire after `access_ttl` seconds (short in tests).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import falcon
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from psycopg.rows import dict_row

from supportdesk.dev.embedded import free_port
from tests.mailserver import ScriptedHandler, SmtpTestServer

CLIENT_ID = "desk-test-client"
CLIENT_SECRET = "desk-test-secret"


@dataclass
class Grant:
    """An authorization code waiting for its exchange."""

    username: str
    client_id: str
    redirect_uri: str
    scope: str
    challenge: str
    used: bool = False
    issued: float = field(default_factory=time.monotonic)


@dataclass
class Access:
    username: str
    expires: float  # time.time()
    scope: str


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # the tests' output stays readable
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class AuthorizationServer:
    def __init__(self, redirect_uris: tuple[str, ...] = (), scope: str = "mail offline"):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redirect_uris = set(redirect_uris)
        self.scope = scope
        self._lock = threading.Lock()
        self.reset()
        app = falcon.App()
        app.add_route("/authorize", _Authorize(self))
        app.add_route("/token", _Token(self))
        app.add_route("/introspect", _Introspect(self))
        self._server = make_server(
            "127.0.0.1", self.port, app, server_class=_ThreadingServer, handler_class=_Quiet
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- what a test sets and reads -------------------------------------------------------

    def reset(self) -> None:
        """A clean server for the next test (the server itself lasts the whole run)."""
        with self._lock:
            self.authorize_requests: list[dict[str, str]] = []
            self.token_requests: list[dict[str, str]] = []
            self.introspections: list[str] = []
            self.grants: dict[str, Grant] = {}
            self.access: dict[str, Access] = {}
            self.refresh: dict[str, str] = {}  # refresh token -> username
            self.revoked_users: set[str] = set()
            self.rotate = False
            self.down = False
            self.access_ttl = 3600.0
            self.issue_refresh_token = True
            self.token_delay = 0.0  # seconds /token takes to answer (a slow provider)

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.base_url}/introspect"

    def allow_redirect(self, uri: str) -> None:
        self.redirect_uris.add(uri)

    def revoke(self, username: str) -> None:
        """The user withdrew consent (or an admin revoked the app): refreshes fail."""
        with self._lock:
            self.revoked_users.add(username)

    def expire_access_tokens(self) -> None:
        with self._lock:
            for access in self.access.values():
                access.expires = 0

    def issue(self, username: str) -> dict[str, Any]:
        """Tokens for `username` without the browser part (a test seeding a mailbox)."""
        with self._lock:
            return self._tokens(username, self.scope, refresh=True)

    def is_active(self, token: str) -> Access | None:
        with self._lock:
            access = self.access.get(token)
        return access if access and access.expires > time.time() else None

    # --- the user at the provider's consent page ----------------------------------------------

    def accept(self, authorize_url: str, username: str) -> str:
        """What the browser is sent to after the user accepts: the redirect_uri with a code
        and the state. The authorize URL is fetched first, as a browser would, so that the
        server checks it (an AssertionError says why it refused)."""
        return self._decide(authorize_url, {"decision": "accept", "username": username})

    def deny(self, authorize_url: str) -> str:
        return self._decide(authorize_url, {"decision": "deny"})

    def _decide(self, authorize_url: str, form: dict[str, str]) -> str:
        page = requests.get(authorize_url, timeout=5)
        assert page.status_code == 200, page.text
        query = urlsplit(authorize_url).query
        answer = requests.post(
            f"{self.authorize_url}?{query}", data=form, allow_redirects=False, timeout=5
        )
        assert answer.status_code == 302, answer.text
        return answer.headers["Location"]

    # --- the protocol -----------------------------------------------------------------------------

    def check_authorize(self, params: dict[str, str]) -> str | None:
        """Why an authorization request is refused, or None."""
        if params.get("response_type") != "code":
            return "response_type must be code"
        if params.get("client_id") != CLIENT_ID:
            return "unknown client_id"
        if params.get("redirect_uri") not in self.redirect_uris:
            return f"redirect_uri {params.get('redirect_uri')!r} is not registered"
        if not params.get("scope"):
            return "scope is missing"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE with S256 is required"
        if not params.get("state"):
            return "state is missing"
        return None

    def grant(self, params: dict[str, str], username: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.grants[code] = Grant(
                username,
                params["client_id"],
                params["redirect_uri"],
                params["scope"],
                params["code_challenge"],
            )
        return code

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        with self._lock:
            self.token_requests.append(dict(form))
            if self.down:
                return 500, {}
            client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
            if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
                return 401, {"error": "invalid_client"}
            if form.get("grant_type") == "authorization_code":
                return self._exchange(form)
            if form.get("grant_type") == "refresh_token":
                return self._refreshed(form)
            return 400, {"error": "unsupported_grant_type"}

    def _exchange(self, form: dict[str, str]) -> tuple[int, dict]:
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.used or time.monotonic() - grant.issued > 600:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        return 200, self._tokens(grant.username, grant.scope, refresh=self.issue_refresh_token)

    def _refreshed(self, form: dict[str, str]) -> tuple[int, dict]:
        username = self.refresh.get(form.get("refresh_token", ""))
        if username is None or username in self.revoked_users:
            return 400, {
                "error": "invalid_grant",
                "error_description": "AADSTS70000: the refresh token was revoked",
            }
        if self.rotate:
            del self.refresh[form["refresh_token"]]
        return 200, self._tokens(username, self.scope, refresh=self.rotate)

    def _tokens(self, username: str, scope: str, *, refresh: bool) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self.access[access] = Access(username, time.time() + self.access_ttl, scope)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.access_ttl),
            "scope": scope,
        }
        if refresh:
            token = secrets.token_urlsafe(32)
            self.refresh[token] = username
            answer["refresh_token"] = token
        return answer

    def introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            self.introspections.append(token)
        access = self.is_active(token)
        if access is None:
            return {"active": False}
        return {"active": True, "username": access.username, "exp": int(access.expires)}

    # --- the server -----------------------------------------------------------------------------

    def start(self) -> AuthorizationServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _form(req: falcon.Request) -> dict[str, str]:
    raw = req.bounded_stream.read().decode()
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _basic(req: falcon.Request) -> tuple[str, str] | None:
    header = req.get_header("Authorization") or ""
    if not header.lower().startswith("basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return unquote_plus(user), unquote_plus(password)


class _Authorize:
    def __init__(self, server: AuthorizationServer):
        self.server = server

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = {k: str(v) for k, v in req.params.items()}
        with self.server._lock:
            self.server.authorize_requests.append(params)
        problem = self.server.check_authorize(params)
        resp.content_type = falcon.MEDIA_TEXT
        if problem:
            resp.status = falcon.HTTP_400
            resp.text = problem
            return
        resp.text = "Support Desk wants to read and send mail as you. [Accept] [Cancel]"

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = {k: str(v) for k, v in req.params.items()}
        problem = self.server.check_authorize(params)
        if problem:
            raise falcon.HTTPBadRequest(description=problem)
        form = _form(req)
        if form.get("decision") == "accept":
            answer = {"code": self.server.grant(params, form["username"])}
        else:
            answer = {"error": "access_denied", "error_description": "The user said no."}
        answer["state"] = params["state"]
        resp.status = falcon.HTTP_302
        resp.location = f"{params['redirect_uri']}?{urlencode(answer)}"


class _Token:
    def __init__(self, server: AuthorizationServer):
        self.server = server

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        time.sleep(self.server.token_delay)
        status, body = self.server.token(_form(req), _basic(req))
        resp.status = status
        if status == 500:
            resp.content_type = falcon.MEDIA_HTML
            resp.text = "<html><body>Service unavailable</body></html>"
            return
        resp.media = body


class _Introspect:
    def __init__(self, server: AuthorizationServer):
        self.server = server

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.server.introspect(_form(req).get("token", ""))


# --- an SMTP server whose XOAUTH2 asks the authorization server ---------------------------------


class XOAuth2Handler(ScriptedHandler):
    """aiosmtpd's hook for `AUTH XOAUTH2`: the token is introspected over HTTP, and the
    user it belongs to must be the one named. A refusal is answered as Google and
    Microsoft do: a 334 challenge with a JSON error, then 535 after the client's empty line."""

    def __init__(self, introspection_url: str):
        super().__init__()
        self.introspection_url = introspection_url
        self.logins: list[str] = []  # the users logged in, in order

    async def auth_XOAUTH2(self, server, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            blob = await server.challenge_auth("")
        fields = dict(part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        answer = requests.post(self.introspection_url, data={"token": token}, timeout=5).json()
        if answer.get("active") and answer.get("username") == user:
            self.logins.append(user)
            return AuthResult(success=True, auth_data=user)
        error = json.dumps({"status": "401", "schemes": "bearer", "scope": "mail"})
        await server.challenge_auth(error)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and token not accepted"
        )


class XOAuth2SmtpServer(SmtpTestServer):
    """An SMTP server (tests/mailserver.py) that takes mail only after AUTH XOAUTH2, over
    plain text (the tests' mailbox rows say smtp_security NONE, allowed outside production)."""

    def __init__(self, introspection_url: str):
        self.port = free_port()
        self.handler = XOAuth2Handler(introspection_url)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            auth_required=True,
            auth_require_tls=False,
        )

    @property
    def logins(self) -> list[str]:
        return self.handler.logins


class PasswordSmtpServer(SmtpTestServer):
    """An SMTP server that takes mail only after AUTH PLAIN or LOGIN with `username` and
    `password` (a company mailbox's own server with a password login)."""

    def __init__(self, username: str, password: str):
        self.port = free_port()
        self.handler = ScriptedHandler()
        self.logins: list[str] = []

        def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = auth_data.login.decode() == username and auth_data.password.decode() == password
            if ok:
                self.logins.append(username)
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_required=True,
            auth_require_tls=False,
        )


# --- the desk's side, as the tests set it up ---------------------------------------------------


def oauth_settings(settings, server: AuthorizationServer, provider: str = "CUSTOM"):
    """`settings` with `provider`'s OAuth client and endpoints pointing at `server` (for
    MICROSOFT or GOOGLE, only the endpoints are overridden: their other defaults are what
    production uses), and the redirect URL registered with the server."""
    prefix = f"oauth_{provider.lower()}_"
    over = {
        prefix + "client_id": CLIENT_ID,
        prefix + "client_secret": CLIENT_SECRET,
        prefix + "authorize_url": server.authorize_url,
        prefix + "token_url": server.token_url,
    }
    if provider == "CUSTOM":
        over[prefix + "scopes"] = server.scope
    changed = settings.replace(**over)
    server.allow_redirect(changed.oauth_provider(provider).redirect_uri)
    return changed


def insert_mailbox(conn, **over: Any) -> dict[str, Any]:
    """A `mailboxes` row (an OAuth mailbox of the CUSTOM provider unless told), written with
    SQL as the Mailboxes page would."""
    values = {
        "address": "support@acme.example",
        "display_name": "Acme Support",
        "imap_host": "127.0.0.1",
        "imap_port": 993,
        "imap_security": "SSL",
        "auth": "OAUTH2",
        "username": "support@acme.example",
        "oauth_provider": "CUSTOM",
        "status": "NEW",
    } | over
    if values["auth"] == "PASSWORD":
        values["oauth_provider"] = None
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({c})s" for c in values)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"INSERT INTO mailboxes ({columns}) VALUES ({placeholders}) RETURNING *", values
        )
        return cur.fetchone()


def connect_mailbox(
    db,
    box,
    server: AuthorizationServer,
    mailbox_id: int,
    username: str,
    *,
    expires_in: float | None = None,
) -> dict[str, Any]:
    """Store tokens the server issued for `username` on the mailbox, as a completed flow
    would (status OK); the server's answer is returned."""
    tokens = server.issue(username)
    lifetime = expires_in if expires_in is not None else tokens["expires_in"]
    with db.transaction() as conn:
        conn.execute(
            "UPDATE mailboxes SET secret_encrypted = %s, access_token_encrypted = %s, "
            "access_token_expires_at = now() + %s, status = 'OK' WHERE id = %s",
            (
                box.seal(tokens["refresh_token"]),
                box.seal(tokens["access_token"]),
                dt.timedelta(seconds=lifetime),
                mailbox_id,
            ),
        )
    return tokens


def mailbox_row(db, mailbox_id: int) -> dict[str, Any]:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM mailboxes WHERE id = %s", (mailbox_id,))
        return cur.fetchone()
