"""Sending one outbox row over SMTP with the standard library (DESIGN.md section 6).

`build_message` turns a row into the `EmailMessage` it describes, byte for byte the same on
every attempt (same Message-ID, same Date). `SmtpSender` keeps one connection open while
there is work, with STARTTLS and login when configured, and sorts failures into the two
kinds the worker acts on: `TransientFailure` (4xx replies, refused or dropped connections,
timeouts: retried) and `PermanentFailure` (5xx replies about the message: not retried).
"""

from __future__ import annotations

import io
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from supportdesk.core.text import MAIL_SHAPE
from supportdesk.mail.outbound.attached import (
    AttachedFile,
    base64_lines,
    file_part,
    mime_boundary,
)
from supportdesk.mail.outbound.failures import (
    DeliveryFailure,
    PermanentFailure,
    SessionFailure,
    TransientFailure,
)

__all__ = [
    "DeliveryFailure",
    "PermanentFailure",
    "SessionFailure",
    "SmtpSender",
    "TransientFailure",
    "build_message",
    "message_bytes",
    "wire_bytes",
]

log = logging.getLogger("supportdesk.mail.outbound.sender")


# UTF-8 bodies as quoted-printable: readable in the source, and safe for any line length.
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP

# An open connection unused for this long is checked with NOOP before the next message:
# servers drop idle clients, and a dead connection must not cost a delivery attempt.
IDLE_CHECK_SECONDS = 5.0


def build_message(
    row: Mapping[str, Any], default_from: str, files: Sequence[AttachedFile] = ()
) -> Message:
    return _build_message(row, default_from, [file_part(f) for f in files])


def _build_message(row: Mapping[str, Any], default_from: str, files: list[Message]) -> Message:
    """The email an outbox row describes, with `files` (read from storage for the row's
    `attachment_ids`, see attached.py) as attachments. Raises PermanentFailure if the row
    cannot be an email at all (a header with a line break, say), since no retry can change
    it. The same row and files make the same bytes on every attempt: same Message-ID, Date
    and MIME boundaries.

    Built with the email package's compat32 classes: the modern `EmailMessage` API parses
    every header it is given through the header registry, which measured at 3.4 ms per
    message here (more than the SMTP exchange itself). So the checks that API would make
    are made here: no line breaks in a header, RFC 2047 for non-ASCII text, quoted-printable
    bodies (safe for any line length).
    """
    try:
        text = _text_part(row, "plain")
        body: Message = text
        if row["body_html"]:
            body = MIMEMultipart("alternative", _subparts=[text, _text_part(row, "html")])
        message = body
        if files:
            # Text and HTML first, then each file: what every mail client shows as a
            # message with attachments.
            message = MIMEMultipart("mixed", _subparts=[body, *files])
        for name, value in _headers(row, default_from):
            if value is not None:
                message[_ascii(name)] = value
        multiparts = [part for part in message.walk() if part.is_multipart()]
        for n, part in enumerate(multiparts):
            part.set_boundary(mime_boundary(_ascii(row["message_id"]), n))
        return message
    except (ValueError, TypeError) as ex:
        raise PermanentFailure(f"the email cannot be built: {ex}") from ex


def _headers(row: Mapping[str, Any], default_from: str) -> list[tuple[str, Any]]:
    return [
        ("From", _address(row["from_address"] or default_from)),
        ("To", _address(row["to_address"])),
        # A PUBLIC reply's participants (section 11): one email, To and Cc.
        ("Cc", ", ".join(map(_address, cc)) if (cc := row.get("cc_addresses")) else None),
        # Rows written before migration 0002 have no Reply-To: the support address.
        ("Reply-To", _address(row["reply_to"] or default_from)),
        ("Subject", _unstructured(row["subject"])),
        ("Date", format_datetime(row["created_at"])),
        ("Message-ID", _ascii(row["message_id"])),
        ("In-Reply-To", _ascii(row["in_reply_to"]) if row["in_reply_to"] else None),
        ("References", _ascii(row["references"]) if row["references"] else None),
        *((name, _unstructured(value)) for name, value in (row["headers"] or {}).items()),
    ]


def _text_part(row: Mapping[str, Any], subtype: str) -> MIMEText:
    return MIMEText(row["body_html" if subtype == "html" else "body_text"], subtype, _UTF8_QP)


def _checked(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("a header value may not contain a line break")
    return value


def _ascii(value: str) -> str:
    if not _checked(value).isascii():
        raise ValueError(f"{value!r} must be ASCII")
    return value


def _unstructured(value: str) -> str | Header:
    return value if _checked(value).isascii() else Header(value, "utf-8")


def _address(value: str) -> str:
    """`Name <address>`: a non-ASCII name is encoded (RFC 2047), the address must be ASCII."""
    name, address = parseaddr(_checked(value))
    # The last check before SMTP: shaped like an address mail carries (text.py; an intranet
    # host may have no dot), in printable ASCII, the only characters RCPT TO and an
    # unencoded header take. What we store passed more.
    if not (MAIL_SHAPE.match(address) and address.isascii() and address.isprintable()):
        raise ValueError(f"{value!r} is not an address we can send to")
    return formataddr((name, address), charset="utf-8")


def message_bytes(
    row: Mapping[str, Any], default_from: str, files: Sequence[AttachedFile] = ()
) -> bytes:
    """The email of an outbox row (with its `files`) flattened with CRLF line ends: what
    `smtplib.SMTP.sendmail` takes; the same bytes on every attempt, and the same as
    flattening `build_message`.

    The files' base64 is put in after the generator has run: the generator writes a body
    one line at a time (3,600 lines for 200 KiB, about 3 ms), while their lines are made
    at once here. Each file part is generated holding a placeholder, derived from the
    Message-ID like the boundaries (nobody writing to us knows it), found from the end."""
    message_id = _ascii(row["message_id"])
    placeholders = [mime_boundary(message_id, -1 - n) for n in range(len(files))]
    message = _build_message(
        row, default_from, [file_part(f, p) for f, p in zip(files, placeholders, strict=True)]
    )
    buffer = io.BytesIO()
    generator = BytesGenerator(
        buffer, mangle_from_=False, policy=message.policy.clone(linesep="\r\n")
    )
    generator.flatten(message)
    flattened = buffer.getvalue()
    pieces: list[bytes] = []
    end = len(flattened)
    for file, placeholder in reversed(list(zip(files, placeholders, strict=True))):
        at = flattened.rindex(placeholder.encode("ascii"), 0, end)
        pieces += [flattened[at + len(placeholder) : end], base64_lines(file.data)]
        end = at
    pieces.append(flattened[:end])
    return b"".join(reversed(pieces))


def wire_bytes(
    row: Mapping[str, Any], default_from: str, files: Sequence[AttachedFile] = ()
) -> bytes:
    """The email of an outbox row (with its `files`) as SMTP's DATA carries it: CRLF line
    ends, leading dots doubled, ending in CRLF (the final "." is sent separately); the same
    bytes on every attempt. PermanentFailure if the row cannot be an email."""
    data = message_bytes(row, default_from, files)
    if data.startswith(b"."):  # never a header; for completeness
        data = b"." + data
    # What `(?m)^\.` -> `..` does, at a tenth of its cost on a large email.
    data = data.replace(b"\n.", b"\n..")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


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
        tls_context: ssl.SSLContext | None = None,
        connect: Callable[..., smtplib.SMTP] = smtplib.SMTP,
    ):
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self._connect = connect
        # The system's trusted CAs, with hostname checks; tests pass their own CA.
        self.tls_context = tls_context or ssl.create_default_context()
        self._conn: smtplib.SMTP | None = None
        self._last_used = 0.0

    def send(
        self,
        data: bytes,
        sender: str,
        recipient: str | Sequence[str],
        before_commit: Callable[[], None] = lambda: None,
    ) -> dict[str, str]:
        """Deliver `data` (see `wire_bytes`) to `recipient` (one address, or the To and Cc
        of one email) with `sender` as the envelope sender. Returns the recipients the
        server refused for good (5xx) while it took the others: the email went to those.

        The SMTP transaction is run by hand (what smtplib's sendmail does) so that
        `before_commit` runs after the whole message has been sent and before the final "."
        that makes the server take it: the worker finishes recording the previous email's
        outcome there, while this one travels. A recipient refused for now (4xx) fails the
        whole email before DATA, so that a retry reaches everyone once; one refused for
        good is left out unless all are.
        """
        recipients = [recipient] if isinstance(recipient, str) else list(recipient)
        refused: dict[str, tuple[int, bytes]] = {}
        conn = self._session()
        try:
            code, reply = conn.mail(sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            for address in recipients:
                code, reply = conn.rcpt(address)
                if code not in (250, 251):
                    refused[address] = (code, reply)
                    if not 500 <= code <= 599:
                        raise smtplib.SMTPRecipientsRefused({address: (code, reply)})
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
            code, reply = conn.docmd("data")
            if code != 354:
                raise smtplib.SMTPDataError(code, reply)
            conn.send(data)
            try:
                before_commit()
            except BaseException:
                self.close()  # without the final ".", the server drops the message
                raise
            conn.send(b".\r\n")
            code, reply = conn.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
            self._last_used = time.monotonic()
            return {address: _reply(*answer) for address, answer in refused.items()}
        except smtplib.SMTPRecipientsRefused as ex:
            code, text = next(iter(ex.recipients.values()))
            self._after_refusal()
            raise self._by_code(code, text) from ex
        except smtplib.SMTPSenderRefused as ex:
            # Our own address refused (must authenticate, not allowed to send as it):
            # configuration, not this message.
            self._after_refusal()
            log.error(
                "SMTP server %s:%s refuses our sender %s: %s", self.host, self.port, sender, ex
            )
            raise SessionFailure(f"sender refused: {_reply(ex.smtp_code, ex.smtp_error)}") from ex
        except smtplib.SMTPResponseException as ex:
            # SMTPDataError and the like: the server's answer to this message.
            self._after_refusal()
            raise self._by_code(ex.smtp_code, ex.smtp_error) from ex
        except (smtplib.SMTPException, OSError) as ex:
            # Disconnected (also after DATA, before the reply), reset, timed out.
            self.close()
            raise TransientFailure(f"SMTP connection failed: {ex!r}") from ex

    def _session(self) -> smtplib.SMTP:
        """The open connection, or a new one; any failure to get one is a SessionFailure."""
        try:
            return self._connection()
        except smtplib.SMTPAuthenticationError as ex:
            log.error("SMTP login refused by %s:%s: %s", self.host, self.port, ex)
            reply = _reply(ex.smtp_code, ex.smtp_error)
            raise SessionFailure(f"SMTP login refused: {reply}") from ex
        except smtplib.SMTPResponseException as ex:  # a refused greeting, EHLO or STARTTLS
            reply = _reply(ex.smtp_code, ex.smtp_error)
            raise SessionFailure(f"SMTP server refused the session: {reply}") from ex
        except (smtplib.SMTPException, OSError) as ex:  # refused, unreachable, timed out
            raise SessionFailure(f"SMTP server unreachable: {ex!r}") from ex

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
            conn = self._open()
            # The final "." goes out as a write of its own (see `send`): without this,
            # Nagle's algorithm holds it until the server's delayed ACK, 40 ms a message.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
            self._last_used = time.monotonic()
        return self._conn

    def _open(self) -> smtplib.SMTP:
        """A new session, greeted, upgraded and logged in as configured."""
        conn = self._connect(self.host, self.port, timeout=self.timeout)
        try:
            conn.ehlo()
            if self.starttls:
                conn.starttls(context=self.tls_context)
                conn.ehlo()
            if self.username:
                conn.login(self.username, self.password or "")
        except BaseException:
            conn.close()
            raise
        return conn
