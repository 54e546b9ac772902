"""The development mailbox: a local SMTP server that keeps every message as an `.eml` file.

The stand-in for Mailtrap's sandbox when no SMTP server is configured: `make dev` runs it
(`supportdesk dev-mailbox`) and points the worker at it, and the web app shows what it
received at `/dev/mailbox` (development only). Nothing it receives leaves the machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from supportdesk.mail.eml_folder import new_name


class MailboxHandler:
    """aiosmtpd handler: each accepted message becomes one file, written atomically."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.store(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        return "250 Message accepted for delivery"

    def store(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
        name = new_name()
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
