"""Logging in to a mailbox's IMAP and SMTP servers (DESIGN.md section 10), one code path for
the connection test, the fetcher and sending.

- TLS: `SSL` (implicit) or `STARTTLS`, verified against the system's certificate store
  (`ssl.create_default_context`, which honours `SSL_CERT_FILE`). `NONE` (plain text) is
  refused outside development and tests.
- Login: `PASSWORD` with the mailbox's decrypted secret, or `OAUTH2` with SASL XOAUTH2 and
  an access token from `access_token(mailbox)` (supportdesk.mail.mailboxes.tokens, which
  refreshes it ahead of expiry and raises `Reauthorize` when the provider refuses).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Callable, Mapping
from typing import Any

from imapclient import IMAPClient

from supportdesk.mail.mailboxes.secrets import SecretBox

Row = Mapping[str, Any]
AccessToken = Callable[[Row], str]


class Reauthorize(Exception):
    """The OAuth provider refused to refresh the mailbox's token (revoked, expired, consent
    withdrawn): an ADMIN must connect it again. Raised by `access_token`; the mailbox is
    then REAUTHORIZE and fetching pauses."""


class PlainTextRefused(Exception):
    """A mailbox set to connect without TLS outside development."""


def xoauth2(username: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (Google's and Microsoft's documented format):
    `user=<u>^Aauth=Bearer <token>^A^A`, before base64 (the IMAP and SMTP clients encode)."""
    if any(c in username + access_token for c in "\x01\r\n"):
        raise ValueError("a user name or token with a control character")
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01"


class MailboxLogin:
    """How to log in to a mailbox's servers: its secrets and, for OAuth, its access token."""

    def __init__(
        self,
        secrets: SecretBox,
        access_token: AccessToken | None = None,
        *,
        plain_text_allowed: bool = False,
        ssl_context: Callable[[], ssl.SSLContext] = ssl.create_default_context,
    ):
        self.secrets = secrets
        self.access_token = access_token
        self.plain_text_allowed = plain_text_allowed
        self.ssl_context = ssl_context

    # --- IMAP --------------------------------------------------------------------------------

    def imap(self, mailbox: Row, timeout: float = 30.0) -> IMAPClient:
        """A logged-in IMAP session (no folder selected yet). Raises what imapclient, ssl
        and socket raise; the caller names the failure."""
        security = mailbox["imap_security"]
        self._check_security(security)
        client = IMAPClient(
            mailbox["imap_host"],
            port=mailbox["imap_port"],
            ssl=security == "SSL",
            ssl_context=self.ssl_context() if security == "SSL" else None,
            timeout=timeout,
        )
        try:
            if security == "STARTTLS":
                client.starttls(self.ssl_context())
            if mailbox["auth"] == "OAUTH2":
                initial = xoauth2(mailbox["username"], self._token(mailbox))
                # A challenge after our response is the server's error (JSON): answer empty.
                client.sasl_login("XOAUTH2", _once(initial))
            else:
                client.login(mailbox["username"], self.password(mailbox))
        except BaseException:
            _quietly(client.shutdown)
            raise
        return client

    # --- SMTP --------------------------------------------------------------------------------

    def smtp(self, mailbox: Row, timeout: float = 30.0) -> smtplib.SMTP:
        """A logged-in SMTP session on the mailbox's own server (its `smtp_*` columns)."""
        security = mailbox["smtp_security"]
        self._check_security(security)
        host, port = mailbox["smtp_host"], mailbox["smtp_port"]
        if security == "SSL":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=self.ssl_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        try:
            smtp.ehlo()
            if security == "STARTTLS":
                smtp.starttls(context=self.ssl_context())
                smtp.ehlo()
            username = mailbox["smtp_username"] or mailbox["username"]
            if mailbox["auth"] == "OAUTH2":
                initial = xoauth2(username, self._token(mailbox))
                # An empty answer to the server's challenge: it sent an error as JSON.
                smtp.auth("XOAUTH2", lambda challenge=None: "" if challenge else initial)
            else:
                sealed = mailbox["smtp_secret_encrypted"] or mailbox["secret_encrypted"]
                smtp.login(username, self.secrets.open(sealed))
        except BaseException:
            _quietly(smtp.close)
            raise
        return smtp

    # --- shared ------------------------------------------------------------------------------

    def password(self, mailbox: Row) -> str:
        return self.secrets.open(mailbox["secret_encrypted"] or "")

    def _token(self, mailbox: Row) -> str:
        if self.access_token is None:
            raise RuntimeError("an OAuth mailbox needs MailboxLogin(access_token=...)")
        return self.access_token(mailbox)

    def _check_security(self, security: str) -> None:
        if security == "NONE" and not self.plain_text_allowed:
            raise PlainTextRefused(
                "plain-text connections are refused outside development: use SSL or STARTTLS"
            )


def _once(initial: str) -> Callable[[bytes], str]:
    sent = False

    def respond(_challenge: bytes) -> str:
        nonlocal sent
        if sent:
            return ""
        sent = True
        return initial

    return respond


def _quietly(close: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):  # closing after a failure that is being raised
        close()
