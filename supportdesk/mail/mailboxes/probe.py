"""Reaching a mailbox's folder, and saying in words an ADMIN can act on what went wrong
(DESIGN.md section 10): the connection test (`POST /api/mailboxes/{id}/test`) and the
fetcher open a folder the same way and report a failure the same way.

A failure names its stage, in the order a connection goes through them: `connect` (the
name in DNS, the TCP connection, a server that does not answer), `tls` (the handshake, the
certificate), `login` (the password, the OAuth token, a stored secret that cannot be
read) and `folder` (the folder cannot be opened). Its message never holds a secret.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from supportdesk.mail.mailboxes.connect import MailboxLogin, PlainTextRefused, Reauthorize, Row
from supportdesk.mail.mailboxes.secrets import SecretUnreadable
from supportdesk.mail.mailboxes.tokens import TokenUnavailable

STAGES = ("connect", "tls", "login", "folder")


class ConnectionFailed(Exception):
    """A mailbox could not be reached; `message` is safe to show an ADMIN."""

    def __init__(self, stage: str, message: str, *, reauthorize: bool = False):
        super().__init__(message)
        self.stage = stage
        self.message = message
        # The OAuth provider refused the token: fetching pauses until it is connected again.
        self.reauthorize = reauthorize


@dataclass(frozen=True)
class Folder:
    """What the server said when the folder was selected."""

    name: str
    uidvalidity: int
    uidnext: int
    messages: int
    idle: bool
    move: bool

    def public(self) -> dict[str, Any]:
        return {
            "folder": self.name,
            "uidvalidity": self.uidvalidity,
            "uidnext": self.uidnext,
            "messages": self.messages,
            "idle": self.idle,
            "move": self.move,
        }


def open_folder(login: MailboxLogin, mailbox: Row, timeout: float) -> tuple[IMAPClient, Folder]:
    """A logged-in session with the mailbox's folder selected (read-write), or
    ConnectionFailed naming the stage that failed."""
    try:
        client = login.imap(mailbox, timeout)
    except Exception as error:
        raise failure(error, mailbox, timeout) from error
    try:
        info = client.select_folder(mailbox["imap_folder"])
        capabilities = client.capabilities()
    except IMAPClientAbortError as error:
        client.shutdown()
        raise failure(error, mailbox, timeout) from error
    except IMAPClientError as error:
        _logout(client)
        raise ConnectionFailed(
            "folder",
            f"The folder {mailbox['imap_folder']!r} could not be opened: {_server_text(error)}",
        ) from error
    except Exception as error:
        client.shutdown()
        raise failure(error, mailbox, timeout) from error
    folder = Folder(
        name=mailbox["imap_folder"],
        uidvalidity=int(info[b"UIDVALIDITY"]),
        uidnext=int(info.get(b"UIDNEXT", 1)),
        messages=int(info.get(b"EXISTS", 0)),
        idle=b"IDLE" in capabilities,
        move=b"MOVE" in capabilities,
    )
    return client, folder


def check_connection(login: MailboxLogin, mailbox: Row, timeout: float) -> Folder:
    """Connect, log in, select the folder, log out: what the server showed."""
    client, folder = open_folder(login, mailbox, timeout)
    _logout(client)
    return folder


def failure(error: BaseException, mailbox: Row, timeout: float) -> ConnectionFailed:
    """`error`, raised while reaching the mailbox, in words an ADMIN can act on."""
    host, port = mailbox["imap_host"], mailbox["imap_port"]
    if isinstance(error, ConnectionFailed):
        return error
    if isinstance(error, Reauthorize):
        return ConnectionFailed(
            "login",
            str(error) or "The provider refused to renew access to this mailbox: connect it again.",
            reauthorize=True,
        )
    if isinstance(error, TokenUnavailable):
        return ConnectionFailed("login", f"No OAuth access token right now: {error}")
    if isinstance(error, PlainTextRefused | SecretUnreadable):
        stage = "tls" if isinstance(error, PlainTextRefused) else "login"
        return ConnectionFailed(stage, str(error))
    if isinstance(error, socket.gaierror):
        return ConnectionFailed("connect", f"The name {host} was not found in DNS.")
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or "not trusted"
        return ConnectionFailed("tls", f"The TLS certificate of {host} was not accepted: {reason}.")
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return ConnectionFailed("connect", f"{host}:{port} closed the connection.")
    if isinstance(error, ssl.SSLError):
        return ConnectionFailed("tls", f"The TLS connection to {host}:{port} failed: {error}.")
    if isinstance(error, TimeoutError | socket.timeout):
        return ConnectionFailed(
            "connect", f"{host}:{port} did not answer within {timeout:g} seconds."
        )
    if isinstance(error, ConnectionRefusedError):
        return ConnectionFailed("connect", f"{host}:{port} refused the connection.")
    if isinstance(error, LoginError):
        return ConnectionFailed(
            "login", f"The server refused the login of {mailbox['username']}: {_server_text(error)}"
        )
    if isinstance(error, IMAPClientAbortError | ConnectionError | EOFError):
        return ConnectionFailed("connect", f"{host}:{port} closed the connection.")
    if isinstance(error, IMAPClientError):
        return ConnectionFailed("login", f"The server refused: {_server_text(error)}")
    if isinstance(error, OSError):
        return ConnectionFailed(
            "connect", f"Could not connect to {host}:{port}: {error.strerror or error}."
        )
    return ConnectionFailed("connect", f"Could not reach {host}:{port}: {type(error).__name__}.")


def _server_text(error: BaseException) -> str:
    """The server's own words (imapclient gives them as bytes' repr sometimes)."""
    text = str(error)
    for prefix in ("b'", 'b"'):
        if text.startswith(prefix) and text.endswith(text[1]):
            text = text[2:-1]
    return text.strip()[:300] or type(error).__name__


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # the session is over either way
        client.shutdown()
