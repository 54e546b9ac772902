"""Files that people send: read while streaming, with caps, and checked by their content.

A file is read in chunks into a spooled temporary file (memory up to 1 MiB, disk beyond),
counting and hashing as it goes; past MAX_UPLOAD_BYTES the read stops and the request is a
413, so an oversize upload is never held in memory. Its type is decided from its first
bytes (`filetype`, plus a text check for plain text and CSV) against an allow-list; the
extension of its name and the type the client declared must agree with it. HTML, SVG,
scripts and executables are refused whatever they are called, and archives are never
unpacked. An image's pixel size is read from its headers and capped (MAX_IMAGE_PIXELS).
The name is kept only for display, cleaned of paths and odd characters.

The same function serves the public form, staff replies and (next) inbound email.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import filetype

from supportdesk.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from supportdesk.core.vocabulary import MAX_FILENAME
from supportdesk.files.image_sizes import pixel_size

CHUNK = 64 * 1024
SNIFF_BYTES = 8192
SPOOL_IN_MEMORY = 1024 * 1024
FIELD = "attachments"

# What may be attached: the type decided from the content, and the extensions its name may
# have. (Office formats are zip or OLE files that `filetype` tells apart by their content.)
ALLOWED: dict[str, tuple[str, ...]] = {
    "image/png": ("png",),
    "image/jpeg": ("jpg", "jpeg"),
    "image/gif": ("gif",),
    "image/webp": ("webp",),
    "application/pdf": ("pdf",),
    "text/plain": ("txt", "log", "text"),
    "text/csv": ("csv",),
    "application/zip": ("zip",),
    "application/msword": ("doc",),
    "application/vnd.ms-excel": ("xls",),
    "application/vnd.ms-powerpoint": ("ppt",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ("docx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ("xlsx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ("pptx",),
    "application/vnd.oasis.opendocument.text": ("odt",),
    "application/vnd.oasis.opendocument.spreadsheet": ("ods",),
}
# Never accepted, whatever ALLOWED says: what a browser opens as a page that runs script
# (by its content, or by its name once downloaded and opened), and SVG (an image that may
# run script). A file with such a name is refused whatever it holds, before its content is
# looked at; and an ALLOWED that lets one in stops the import (below), not a file.
NEVER_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml"})
NEVER_EXTENSIONS = frozenset({"html", "htm", "xhtml", "xht", "shtml", "mht", "mhtml", "svg"})
if leaks := {t for t, names in ALLOWED.items() if t in NEVER_TYPES or NEVER_EXTENSIONS & {*names}}:
    raise RuntimeError(f"uploads.ALLOWED lets in what must never be accepted: {sorted(leaks)}")
IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# The most pixels an image may have (image_sizes): above ordinary phone photos (12 MP, or
# 48-50 MP in full-resolution modes) and a tall full-page screenshot (1920 x 20,000 is
# 38 MP), and about 200 MB to decode at 4 bytes a pixel, so a message's five thumbnails
# stay near a gigabyte in the viewer's browser. No cap on one side: memory goes by pixels,
# and long screenshots are ordinary.
MAX_IMAGE_PIXELS = 50_000_000
TEXT_TYPES = frozenset({"text/plain", "text/csv"})
# Types a client may declare for a file of the sniffed type, besides the type itself.
DECLARED_ALIASES: dict[str, frozenset[str]] = {
    "image/jpeg": frozenset({"image/jpg", "image/pjpeg"}),
    "text/csv": frozenset(
        {"application/csv", "text/comma-separated-values", "application/vnd.ms-excel"}
    ),
    "application/zip": frozenset({"application/x-zip-compressed", "application/x-zip"}),
}
# Declaring nothing in particular is allowed: the content decides.
NO_CLAIM = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# Text that a browser could run or render: refused even when named .txt. A script's #!
# at the start; an HTML or SVG tag, an XML declaration or a comment anywhere in the
# sniffed bytes (a log that quotes markup is refused too: better than serving markup).
_SCRIPT = re.compile(rb"^\s*#!")
_MARKUP = re.compile(
    rb"<(?:!doctype|!--|\?xml|html|head|body|script|svg|img|iframe|object|embed|style|link|"
    rb"meta|form|input|a|math|video|audio|base|frame|frameset|template)[\s/>]",
    re.IGNORECASE,
)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class UploadLimits:
    """MAX_UPLOAD_BYTES a file and MAX_UPLOAD_FILES a message."""

    max_bytes: int
    max_files: int


@dataclass
class Upload:
    """One accepted file: its display name, decided type, size, hash and bytes."""

    filename: str
    content_type: str
    size: int
    sha256: str
    file: IO[bytes] = field(repr=False)

    def close(self) -> None:
        self.file.close()


class FilePart(Protocol):
    """What a multipart body part offers (falcon.media.multipart.BodyPart)."""

    filename: str | None
    content_type: str | None

    @property
    def stream(self) -> Any: ...


_LONGEST_EXTENSION = 16  # .numbers, .xlsm, .torrent: longer is a name with a dot in it


def display_name(raw: str | None) -> str:
    """A file name to show: the last path segment, no control or odd characters, at most
    MAX_FILENAME characters; never used as a storage key. `../../etc/passwd` shows as `passwd`."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    name = " ".join(name.split()).strip(" .")
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= _LONGEST_EXTENSION:
            # The extension kept; the stem cut a few characters short of the limit.
            name = stem[: MAX_FILENAME - 5 - len(extension)] + dot + extension
        else:  # no extension worth keeping (`a.` and 300 characters is no extension)
            name = name[:MAX_FILENAME]
    return name or "attachment"


def read_upload(part: FilePart, max_bytes: int, *, empty_ok: bool = False) -> Upload | None:
    """Read one file part (streaming, capped) and check it; raises 413, 415 or 422. With
    `empty_ok`, an empty part is None (a file input left empty sends one, nameless)."""
    name = display_name(part.filename)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    try:
        digest, size, head = hashlib.sha256(), 0, b""
        for chunk in _chunks(part.stream):
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"{name} is larger than {_mib(max_bytes)}.",
                    details={FIELD: f"{name} is larger than {_mib(max_bytes)}."},
                )
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
            spool.write(chunk)
        if size == 0:
            if empty_ok:
                spool.close()
                return None
            raise ValidationFailed({FIELD: f"{name} is empty."})
        content_type = decide_type(head, name, part.content_type)
        if content_type in TEXT_TYPES:
            _check_whole_text(spool, name)
        elif content_type in IMAGES:
            _check_pixels(spool, name)
        spool.seek(0)
        return Upload(name, content_type, size, digest.hexdigest(), spool)
    except BaseException:
        spool.close()
        raise


def decide_type(head: bytes, filename: str, declared: str | None) -> str:
    """The file's type from its first bytes, if it is allowed and agrees with its name and
    with what the client declared; else UnsupportedMediaType naming the file."""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension in NEVER_EXTENSIONS:
        raise _refused(filename, "This type of file is not accepted.")
    sniffed = _sniff(head)
    if sniffed == "text/plain" and extension == "csv":
        sniffed = "text/csv"
    if sniffed not in ALLOWED:
        raise _refused(filename, "This type of file is not accepted.")
    if extension not in ALLOWED[sniffed] and not (sniffed == "text/plain" and not extension):
        raise _refused(filename, f"Its content is {_label(sniffed)}; its name says otherwise.")
    claim = (declared or "").split(";")[0].strip().lower()
    if (
        claim not in NO_CLAIM
        and claim != sniffed
        and claim not in DECLARED_ALIASES.get(sniffed, frozenset())
    ):
        raise _refused(filename, f"Its content is {_label(sniffed)}, not {claim}.")
    return sniffed


def _sniff(head: bytes) -> str | None:
    """A binary format by its magic number; else text, unless it carries markup or is a
    script (then "text/html", which is refused); else nothing we know."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    text = head.removeprefix(_BOM)
    if _SCRIPT.search(text) or _MARKUP.search(text):
        return "text/html"
    return "text/plain" if _looks_like_text(head) else None


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as ex:
        if ex.start < len(head) - 3:  # not just a character cut at the sniffing limit
            return False
        text = head[: ex.start].decode("utf-8")
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\r\n\t\f")
    return controls <= len(text) // 100


def _check_whole_text(spool: IO[bytes], name: str) -> None:
    """A text file is UTF-8 and free of markup all the way, not just in its first bytes."""
    spool.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    tail = b""
    try:
        for chunk in _chunks(spool):
            decoder.decode(chunk)
            if _MARKUP.search(tail + chunk):
                raise _refused(name, "This type of file is not accepted.")
            tail = chunk[-64:]  # a tag cut between two chunks is still seen
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _refused(name, "It is not text in UTF-8, and not a type we accept.") from None


def _check_pixels(spool: IO[bytes], name: str) -> None:
    """An image is drawn (as a thumbnail, in staff's and customers' browsers) from all its
    pixels: a few KB can say 65535 x 65535, gigabytes to decode. Its size is read from its
    headers, and more than MAX_IMAGE_PIXELS is refused, as is an image whose headers do not
    read (no browser would show it either; refusing keeps every stored image bounded)."""
    size = pixel_size(spool)
    if size is None:
        raise _refused(name, "It is not a readable image.")
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        why = (
            f"{name} is {width:,} x {height:,} pixels; images of at most "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels are accepted."
        )
        raise ValidationFailed({FIELD: why}, why)


def _chunks(stream: Any) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _refused(filename: str, why: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(f"{filename}: {why}", details={FIELD: f"{filename}: {why}"})


def _label(content_type: str) -> str:
    return {"text/html": "HTML or markup"}.get(content_type, content_type)


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:g} MiB"


def too_many_files(max_files: int) -> PayloadTooLarge:
    message = f"Attach at most {max_files} files to one message."
    return PayloadTooLarge(message, details={FIELD: message})


def close_all(uploads: Iterable[Upload]) -> None:
    for upload in uploads:
        upload.close()
