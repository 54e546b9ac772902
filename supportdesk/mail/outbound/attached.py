"""A staff reply's files as MIME parts (DESIGN.md section 11), read from storage at send time.

The outbox row names its files (`attachment_ids`); the worker's claim brings their rows
(`attachments`: name, stored type, size, sha256, storage key, in the order named). Each
file is read once per send, in the storage's chunks, hashed as it comes: a file that is
gone, or whose bytes are not the ones stored, is a PermanentFailure naming it, so no email
leaves with a missing or corrupt part (an admin may retry it from the Outbox once the file
is back). A storage that fails or does not answer is a TransientFailure: retried later.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote

from supportdesk.files.storage import Storage
from supportdesk.mail.outbound.failures import PermanentFailure, TransientFailure

log = logging.getLogger("supportdesk.mail.outbound.attached")

# Parts of an RFC 2231 parameter at most this long: each folds onto a line of its own.
_SEGMENT = 50
# Types whose bytes are text: the desk checked them to be UTF-8 (files.uploads).
_TEXT = ("text/",)


@dataclass(frozen=True)
class AttachedFile:
    filename: str
    content_type: str
    data: bytes


class AttachmentReader:
    """The files of outbox rows, from the storage made on first use (the worker needs
    boto3 only if files are on S3 and an email carries some)."""

    def __init__(self, storage: Storage | Callable[[], Storage] | None):
        self._storage: Storage | None = None
        self._make: Callable[[], Storage] | None = None
        if callable(storage):
            self._make = storage
        else:
            self._storage = storage

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            if self._make is None:
                raise TransientFailure("this worker has no file storage to read attachments from")
            self._storage = self._make()
        return self._storage

    def read(self, row: Mapping[str, Any]) -> list[AttachedFile]:
        """The row's files, in the order it names them; [] for a row without any."""
        wanted = list(row.get("attachment_ids") or ())
        if not wanted:
            return []
        found = {int(a["id"]): a for a in row.get("attachments") or ()}
        missing = [i for i in wanted if i not in found]
        if missing:
            raise PermanentFailure(
                "attachment " + ", ".join(map(str, missing)) + " no longer exists: not sent"
            )
        return [self._read_one(found[i]) for i in wanted]

    def _read_one(self, file: Mapping[str, Any]) -> AttachedFile:
        name = f"attachment {file['id']} ({file['filename']!r})"
        digest = hashlib.sha256()
        pieces: list[bytes] = []
        storage = self.storage
        try:
            for chunk in storage.read(file["storage_key"]):
                digest.update(chunk)
                pieces.append(chunk)
        except FileNotFoundError as ex:
            raise PermanentFailure(f"{name} is missing from the file storage: not sent") from ex
        except Exception as ex:  # a bucket down, refused credentials, a disk error: later
            log.warning("reading %s from storage failed: %r", name, ex)
            raise TransientFailure(f"{name} could not be read from storage: {ex!r}") from ex
        data = b"".join(pieces)
        if len(data) != file["size_bytes"] or digest.hexdigest() != file["sha256"]:
            raise PermanentFailure(
                f"{name} in the file storage is not the file that was stored "
                f"({len(data)} bytes, sha256 {digest.hexdigest()[:12]}…): not sent"
            )
        return AttachedFile(file["filename"], file["content_type"], data)


def file_part(file: AttachedFile, placeholder: str | None = None) -> Message:
    """A file as an attachment: its stored type (text as UTF-8, as downloads serve it), its
    name (RFC 2231 when not plain ASCII), its bytes in base64 (or `placeholder` for them:
    see `base64_lines`)."""
    part = Message()
    content_type = file.content_type
    if content_type.startswith(_TEXT):
        content_type += '; charset="utf-8"'
    part["Content-Type"] = f"{content_type}; {_parameter('name', file.filename)}"
    part["Content-Disposition"] = f"attachment; {_parameter('filename', file.filename)}"
    part["Content-Transfer-Encoding"] = "base64"
    # Without a line break after the last line: the one before the next boundary is its.
    part.set_payload(placeholder or base64.encodebytes(file.data).decode("ascii").rstrip("\n"))
    return part


def base64_lines(data: bytes) -> bytes:
    """`data` in base64 as a flattened email carries it: lines of 76, CRLF between them (no
    CRLF after the last: the generator writes the one before the next boundary)."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")[:-2]


def _parameter(key: str, value: str) -> str:
    """`key="value"` for printable ASCII; else RFC 2231 (`key*0*=utf-8''...; key*1*=...`),
    cut between characters into segments that fold onto lines of their own (a name of 255
    characters, percent-encoded, would pass the 998 a line may have)."""
    value = " ".join(value.split())
    if value.isascii() and value.isprintable() and len(value) <= _SEGMENT:
        return f'{key}="{_quoted(value)}"'
    segments, current = [], ""
    for char in value:
        encoded = quote(char.encode("utf-8"), safe="")
        if len(current) + len(encoded) > _SEGMENT:
            segments.append(current)
            current = ""
        current += encoded
    segments.append(current)
    charset = "utf-8''"
    return "; ".join(
        f"{key}*{n}*={charset if n == 0 else ''}{segment}" for n, segment in enumerate(segments)
    )


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def mime_boundary(message_id: str, n: int) -> str:
    """The n-th MIME boundary of the email with `message_id`: the same on every attempt, so
    a resend is the same message. `=_` cannot occur at a line's start in quoted-printable
    or base64, the only encodings our parts use, so the boundary never collides."""
    return "=_sd_" + hashlib.sha256(f"{message_id}\x00{n}".encode()).hexdigest()[:32]
