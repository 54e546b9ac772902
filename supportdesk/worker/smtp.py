"""Sending one outbox row over SMTP with the standard library (DESIGN.md section 6).

`build_message` turns a row into the `EmailMessage` it describes, byte for byte the same on
every attempt (same Message-ID, same Date). `SmtpSender` keeps one connection open while
there is work, with STARTTLS and login when configured, and sorts failures into the two
kinds the worker acts on: `TransientFailure` (4xx replies, refused or dropped connections,
timeouts: retried) and `PermanentFailure` (5xx replies about the message: not retried).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

log = logging.getLogger("supportdesk.worker.smtp")

# An open connection unused for this long is checked with NOOP before the next message:
# servers drop idle clients, and a dead connection must not cost a delivery attempt.
IDLE_CHECK_SECONDS = 5.0


class DeliveryFailure(Exception):
    """A send that did not succeed; `str()` is what the row and the log keep."""


class TransientFailure(DeliveryFailure):
    """Worth retrying: the server or the network may accept it later."""


class PermanentFailure(DeliveryFailure):
    """Retrying will not help: the server refused this message for good."""


def build_message(row: Mapping[str, Any], default_from: str) -> EmailMessage:
    """The email an outbox row describes. Raises PermanentFailure if the row cannot be an
    email at all (a header with a line break, say), since no retry can change it."""
    try:
        message = EmailMessage()
        message["From"] = row["from_address"] or default_from
        message["To"] = row["to_address"]
        if row["reply_to"]:
            message["Reply-To"] = row["reply_to"]
        message["Subject"] = row["subject"]
        message["Date"] = format_datetime(row["created_at"])
        message["Message-ID"] = row["message_id"]
        if row["in_reply_to"]:
            message["In-Reply-To"] = row["in_reply_to"]
        if row["references"]:
            message["References"] = row["references"]
        for name, value in (row["headers"] or {}).items():
            message[name] = value
        message.set_content(row["body_text"])
        if row["body_html"]:
            message.add_alternative(row["body_html"], subtype="html")
        return message
    except (ValueError, TypeError) as ex:
        raise PermanentFailure(f"the email cannot be built: {ex}") from ex


def _reply(code: int, text: bytes | str) -> str:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(detail.split())}"[:1000]


class SmtpSender:
    """One SMTP connection, opened on demand and reused while it stays healthy."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30,
        connect: Callable[..., smtplib.SMTP] = smtplib.SMTP,
    ):
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self._connect = connect
        self._conn: smtplib.SMTP | None = None
        self._last_used = 0.0

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Deliver `message` to `recipient` with `sender` as the envelope sender."""
        try:
            conn = self._connection()
            conn.send_message(message, from_addr=sender, to_addrs=[recipient])
            self._last_used = time.monotonic()
        except smtplib.SMTPRecipientsRefused as ex:
            code, text = next(iter(ex.recipients.values()))
            self._after_refusal()
            raise self._by_code(code, text) from ex
        except smtplib.SMTPAuthenticationError as ex:
            # Our credentials, not this message: every email would fail alike, so retry
            # (and say so loudly) instead of dead-lettering the whole outbox.
            self.close()
            log.error("SMTP login refused by %s:%s: %s", self.host, self.port, ex)
            reply = _reply(ex.smtp_code, ex.smtp_error)
            raise TransientFailure(f"SMTP login refused: {reply}") from ex
        except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as ex:
            # The server turned the connection away, whatever the message: try later.
            self.close()
            raise TransientFailure(
                f"SMTP server refused the session: {_reply(ex.smtp_code, ex.smtp_error)}"
            ) from ex
        except smtplib.SMTPResponseException as ex:
            # SMTPSenderRefused, SMTPDataError, SMTPHeloError...: the server's own answer.
            self._after_refusal()
            raise self._by_code(ex.smtp_code, ex.smtp_error) from ex
        except smtplib.SMTPNotSupportedError as ex:
            self.close()
            raise TransientFailure(f"SMTP server does not support this: {ex}") from ex
        except (smtplib.SMTPException, OSError) as ex:
            # Disconnected (also after DATA, before the reply), refused, reset, timed out.
            self.close()
            raise TransientFailure(f"SMTP connection failed: {ex!r}") from ex

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None

    @staticmethod
    def _by_code(code: int, text: bytes | str) -> DeliveryFailure:
        if 500 <= code <= 599:
            return PermanentFailure(_reply(code, text))
        return TransientFailure(_reply(code, text))

    def _after_refusal(self) -> None:
        """The server answered: the session is fine, but reset it (or drop it if broken)."""
        if self._conn is None:
            return
        try:
            self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None and time.monotonic() - self._last_used > IDLE_CHECK_SECONDS:
            try:
                if self._conn.noop()[0] != 250:
                    self.close()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
                self._conn = None
        if self._conn is None:
            conn = self._connect(self.host, self.port, timeout=self.timeout)
            try:
                conn.ehlo()
                if self.starttls:
                    conn.starttls(context=ssl.create_default_context())
                    conn.ehlo()
                if self.username:
                    conn.login(self.username, self.password or "")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._last_used = time.monotonic()
        return self._conn
