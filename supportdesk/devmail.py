"""The development mailbox: a local SMTP server that keeps every message as an `.eml` file.

The stand-in for Mailtrap's sandbox when no SMTP server is configured: `make dev` runs it
(`supportdesk dev-mailbox`) and points the worker at it, and the web app shows what it
received at `/dev/mailbox` (development only). Nothing it receives leaves the machine.
"""

from __future__ import annotations

import email
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from supportdesk.errors import NotFound

MESSAGE_NAME = re.compile(r"^[0-9]{8}T[0-9]{12}-[0-9a-f]{8}\.eml$")
MAX_LISTED = 200


class MailboxHandler:
    """aiosmtpd handler: each accepted message becomes one file, written atomically."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.store(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        return "250 Message accepted for delivery"

    def store(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
        envelope = (
            f"X-Mailbox-Envelope-From: {mail_from}\r\n"
            f"X-Mailbox-Envelope-To: {', '.join(rcpt_tos)}\r\n"
        ).encode("ascii", "replace")
        partial = self.directory / f".{name}.part"
        partial.write_bytes(envelope + content)
        os.replace(partial, self.directory / name)
        return self.directory / name


def serve(directory: Path, host: str, port: int) -> Any:
    """Start the mailbox on host:port in a background thread; returns the controller (call
    `.stop()` to end it)."""
    from aiosmtpd.controller import Controller

    controller = Controller(MailboxHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


# --- reading, for the /dev/mailbox page -------------------------------------------------------


@dataclass(frozen=True)
class StoredMail:
    name: str
    message: EmailMessage

    @property
    def received_at(self) -> datetime:
        return datetime.strptime(self.name[:21], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)

    def header(self, name: str) -> str:
        return str(self.message.get(name, ""))

    def text(self) -> str:
        return _content(self.message.get_body(preferencelist=("plain",))) or ""

    def html(self) -> str | None:
        return _content(self.message.get_body(preferencelist=("html",)))


def _content(part: EmailMessage | None) -> str | None:
    """A text part's content; an unknown or wrong charset gives replacement characters."""
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, UnicodeDecodeError):
        return (part.get_payload(decode=True) or b"").decode("utf-8", "replace")


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        return email.message_from_binary_file(handle, policy=policy.default)  # type: ignore[return-value]


def list_mail(directory: Path, limit: int = MAX_LISTED) -> list[StoredMail]:
    """The newest messages first."""
    if not directory.is_dir():
        return []
    names = sorted(
        (p.name for p in directory.iterdir() if MESSAGE_NAME.match(p.name)), reverse=True
    )
    return [StoredMail(name, _parse(directory / name)) for name in names[:limit]]


def read_mail(directory: Path, name: str) -> StoredMail:
    """One message by its file name (nothing else: the name is checked, never a path)."""
    path = directory / name
    if not MESSAGE_NAME.match(name) or not path.is_file():
        raise NotFound("No such message in the mailbox.")
    return StoredMail(name, _parse(path))
