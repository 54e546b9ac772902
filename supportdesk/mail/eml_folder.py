"""A folder of `.eml` files, one message each, named by the time it arrived: the format the
development mailbox (`supportdesk.dev.mailbox`) writes and the /dev/mailbox page reads."""

from __future__ import annotations

import email
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

from supportdesk.core.errors import NotFound

MESSAGE_NAME = re.compile(r"^[0-9]{8}T[0-9]{12}-[0-9a-f]{8}\.eml$")
MAX_LISTED = 200


def new_name() -> str:
    """A file name for a message arriving now (sorts by arrival; matches MESSAGE_NAME)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"


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

    def attachments(self) -> list[tuple[str, str, int]]:
        """(name, type, size in bytes) of each attached file."""
        return [
            (
                part.get_filename() or "(no name)",
                part.get_content_type(),
                len(part.get_payload(decode=True) or b""),
            )
            for part in self.message.iter_attachments()
        ]


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
