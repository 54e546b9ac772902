"""An inbound email, from raw RFC 5322 bytes or a mail provider's JSON, as one dataclass.

Parsed with the standard `email` package (policy.default): headers decoded (RFC 2047);
each text part decoded with the charset it declares, and a wrong or unknown charset
degrades to replacement characters instead of failing; text/plain preferred, an HTML-only
message made into readable text (html2text); attachments, inline images and a forwarded
`message/rfc822` kept as files. What the service needs to thread and to refuse loops is
read here too: the Message-IDs it refers to, and whether it was sent by a machine.

Parsing is total: whatever the bytes, the result is an InboundEmail or a 4xx naming what
is wrong. NULs, lone surrogates and control characters become U+FFFD (PostgreSQL refuses
them); a header the package cannot read is read raw. The package's parser is quadratic
on some hostile structured headers (16 KiB of `"a\"` in a Content-Type takes seconds), so
those are cut to a length no real mail needs, and a message of more than MAX_PARTS parts
is refused.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

import html2text
from mailparser_reply import EmailReplyParser

from supportdesk.errors import BadRequest, ValidationFailed
from supportdesk.text import EMAIL_ADDRESS
from supportdesk.thread_tokens import made_up_message_id

# Visible ASCII but the angle brackets: an id with anything else is no id we can store.
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
MAX_MESSAGE_ID = 250
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv"]
MAX_PARTS = 100
_ADDRESS_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "sender"}
MAX_ADDRESS_HEADER = 4096  # about a hundred addresses
MAX_CONTENT_HEADER = 512  # Content-Type and the like: a type and a few parameters
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with what PostgreSQL or a page cannot take (NUL, lone surrogates, control
    characters but tab and line ends) replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


class _CappedPolicy(email.policy.EmailPolicy):
    """policy.default, but a structured header is cut before it is parsed (each read
    parses it again), so a hostile one costs milliseconds, not minutes."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        lowered = name.lower()
        if lowered in _ADDRESS_HEADERS and len(value) > MAX_ADDRESS_HEADER:
            value = value[:MAX_ADDRESS_HEADER].rsplit(",", 1)[0]
        elif lowered.startswith("content-") and len(value) > MAX_CONTENT_HEADER:
            value = value[:MAX_CONTENT_HEADER]
        return super().header_fetch_parse(name, value)


_POLICY = _CappedPolicy()
_PART_HEADER = re.compile(rb"^content-type:", re.I | re.M)


@dataclass(frozen=True)
class InboundFile:
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    inline: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "filename", storable(self.filename))


@dataclass(frozen=True)
class InboundEmail:
    sender: str  # lower-cased address
    sender_name: str
    recipients: tuple[str, ...]  # To, Cc and delivery addresses, lower-cased
    subject: str
    text: str  # the whole text, as written (quoted history included)
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    files: tuple[InboundFile, ...] = ()
    # Why a machine sent this (an auto-reply, a bounce, a list), or None for a person.
    automatic: str | None = None

    def __post_init__(self) -> None:
        for name in ("sender_name", "subject", "text"):
            object.__setattr__(self, name, storable(getattr(self, name)))

    @property
    def referenced_ids(self) -> tuple[str, ...]:
        """Message-IDs this one answers, nearest first."""
        seen: dict[str, None] = {}
        for message_id in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(message_id, None)
        return tuple(seen)

    @property
    def display_text(self) -> str:
        """The new text of a reply: quoted history and common signatures trimmed."""
        return trim_reply(self.text)


# --- raw MIME ---------------------------------------------------------------------------------


def parse_mime(raw: bytes) -> InboundEmail:
    """An RFC 5322 message, as the SMTP listener or a provider's raw mode delivers it."""
    if not raw.strip():
        raise BadRequest("The message is empty.")
    if len(_PART_HEADER.findall(raw)) > MAX_PARTS:
        raise BadRequest(f"The message has more than {MAX_PARTS} parts.")
    message = email.message_from_bytes(raw, policy=_POLICY)
    headers = _HeaderView(message)
    sender_name, sender = _sender(headers.get("From"))
    text, html, files = _walk(message)
    if not text.strip() and html:
        text = html_to_text(html)
    delivery = [headers.get(name) for name in ("To", "Cc", "Delivered-To", "X-Original-To")]
    return InboundEmail(
        sender=sender,
        sender_name=sender_name,
        recipients=_addresses(delivery),
        subject=headers.get("Subject").strip() or "(no subject)",
        text=text,
        message_id=_message_id(headers.get("Message-ID"), raw),
        in_reply_to=_message_ids(headers.get("In-Reply-To")),
        references=_message_ids(headers.get("References")),
        files=tuple(files),
        automatic=automatic_reason(headers, message.get_content_type()),
    )


class _HeaderView:
    """Header values as text, whatever the message did to them (a header the email
    package cannot parse is read raw rather than failing the message)."""

    def __init__(self, message: EmailMessage):
        self.message = message

    def get(self, name: str) -> str:
        try:
            value = self.message.get(name)
        except Exception:  # a malformed header of someone else's: read it raw
            value = dict(self.message.raw_items()).get(name)
        return "" if value is None else " ".join(str(value).split())

    def names(self) -> set[str]:
        return {name.lower() for name in self.message}


_BODY_TYPES = ("text/plain", "text/html")


def _walk(message: EmailMessage) -> tuple[str, str, list[InboundFile]]:
    """(the text/plain body, the HTML body, the files), from every part."""
    texts: list[str] = []
    htmls: list[str] = []
    files: list[InboundFile] = []
    stack: list[EmailMessage] = [message]
    while stack:
        part = stack.pop(0)
        # Each header read re-parses it (policy.default): read each one once.
        content_type = part.get_content_type()
        maintype = content_type.split("/", 1)[0]
        disposition = part.get_content_disposition()
        if content_type == "message/rfc822" or (
            maintype == "message" and disposition == "attachment"
        ):
            files.append(_forwarded(part))
            continue
        if part.is_multipart():
            if content_type == "multipart/report":
                # A bounce: its human-readable part is the text; the rest is machine data.
                stack[:0] = [p for p in part.iter_parts() if p.get_content_type() == "text/plain"]
                continue
            stack[:0] = list(part.iter_parts())
            continue
        filename = part.get_filename()
        body = content_type in _BODY_TYPES and disposition != "attachment" and filename is None
        if body and content_type == "text/plain":
            texts.append(_text(part))
        elif body:
            htmls.append(_text(part))
        else:  # every other part is a file: kept if the checks allow, else noted
            files.append(
                InboundFile(
                    filename or f"attachment.{content_type.split('/')[-1]}",
                    content_type,
                    part.get_payload(decode=True) or b"",
                    inline=disposition == "inline" or part.get("Content-ID") is not None,
                )
            )
    return "\n\n".join(t for t in texts if t.strip()), "\n".join(htmls), files


def _forwarded(part: EmailMessage) -> InboundFile:
    inner = part.get_payload()
    if isinstance(inner, list) and inner:
        data = inner[0].as_bytes()
        subject = str(inner[0].get("Subject", "") or "")
    else:
        data = part.get_payload(decode=True) or b""
        subject = ""
    name = re.sub(r"[^\w .-]", "", subject)[:80].strip() or "forwarded message"
    return InboundFile(f"{name}.eml", "message/rfc822", data)


def _text(part: EmailMessage) -> str:
    """A text part's content with \n line ends. A wrong or unknown charset degrades to
    replacement characters; bytes that are valid UTF-8 are read as UTF-8 whatever the
    label says (the commonest mislabelling); format=flowed lines are joined again."""
    raw = part.get_payload(decode=True) or b""
    try:
        content = part.get_content()
        if not isinstance(content, str):
            content = content.decode("utf-8", "replace")
    except (LookupError, ValueError, AssertionError):  # UnicodeDecodeError is a ValueError
        content = None
    if content is None or "\ufffd" in content:
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError:
            content = content if content is not None else _decode(raw, part.get_content_charset())
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_param("format", "").lower() == "flowed":
        content = _unflow(content, part.get_param("delsp", "").lower() == "yes")
    return content


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", "replace")
    except (LookupError, ValueError):  # unknown, or not even a name (a NUL in it)
        return raw.decode("utf-8", "replace")


def _unflow(text: str, delete_space: bool) -> str:
    """RFC 3676: a line ending in a space continues on the next (not the "-- " line)."""
    out: list[str] = []
    joined = ""
    for line in text.split("\n"):
        if line.endswith(" ") and line != "-- " and not line.startswith(">"):
            joined += line[:-1] if delete_space else line
            continue
        out.append(joined + line)
        joined = ""
    if joined:
        out.append(joined)
    return "\n".join(out)


# --- a provider's JSON --------------------------------------------------------------------------


def parse_json(payload: Mapping[str, Any]) -> InboundEmail:
    """`{from, to, cc?, subject, text?, html?, message_id, in_reply_to?, references?,
    headers?, attachments?: [{filename, content_type, content_base64}]}`."""
    problems: dict[str, str] = {}
    known = {
        "from",
        "to",
        "cc",
        "subject",
        "text",
        "html",
        "message_id",
        "in_reply_to",
        "references",
        "headers",
        "attachments",
    }
    for name in sorted(set(payload) - known):
        problems[name] = "Unknown field."

    def text_field(name: str, required: bool = False) -> str:
        value = payload.get(name)
        if value is None:
            if required:
                problems[name] = "Required."
            return ""
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ", ".join(value)
        if not isinstance(value, str):
            problems[name] = "Must be text."
            return ""
        return value

    sender_name, sender = _sender(text_field("from", required=True), problems)
    headers = payload.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        problems["headers"] = "Give headers as an object of texts."
        headers = {}
    files = _json_files(payload.get("attachments"), problems)
    message_id = text_field("message_id", required=True)
    if message_id and not _message_ids(message_id):
        problems["message_id"] = "Give a Message-ID like <id@host>."
    text, html, subject = text_field("text"), text_field("html"), text_field("subject")
    to, cc = text_field("to"), text_field("cc")
    in_reply_to, references = text_field("in_reply_to"), text_field("references")
    if problems:  # every field read: one answer names all that is wrong
        raise ValidationFailed(problems, "The inbound email payload is not valid.")
    view = _MappingHeaders(headers)
    return InboundEmail(
        sender=sender,
        sender_name=sender_name,
        recipients=_addresses([to, cc]),
        subject=" ".join(subject.split()) or "(no subject)",
        text=(text if text.strip() else html_to_text(html)).replace("\r\n", "\n"),
        message_id=_message_ids(message_id)[0],
        in_reply_to=_message_ids(in_reply_to),
        references=_message_ids(references),
        files=tuple(files),
        automatic=automatic_reason(view, view.get("Content-Type").split(";")[0].strip().lower()),
    )


class _MappingHeaders:
    def __init__(self, headers: Mapping[str, str]):
        self.headers = {k.lower(): " ".join(v.split()) for k, v in headers.items()}

    def get(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def names(self) -> set[str]:
        return set(self.headers)


def _json_files(value: object, problems: dict[str, str]) -> list[InboundFile]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems["attachments"] = "Give a list of {filename, content_type, content_base64}."
        return []
    files = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not all(
            isinstance(item.get(k), str) for k in ("filename", "content_base64")
        ):
            problems[f"attachments[{index}]"] = "Give filename and content_base64 as text."
            continue
        try:
            data = base64.b64decode(item["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            problems[f"attachments[{index}]"] = "content_base64 is not base64."
            continue
        content_type = item.get("content_type")
        files.append(
            InboundFile(
                item["filename"],
                content_type if isinstance(content_type, str) else "application/octet-stream",
                data,
            )
        )
    return files


# --- what both need -----------------------------------------------------------------------------


def _sender(value: str, problems: dict[str, str] | None = None) -> tuple[str, str]:
    try:
        name, address = parseaddr(value[:MAX_ADDRESS_HEADER])
    except (RecursionError, ValueError):  # ((((… nested beyond what the parser recurses
        name, address = "", ""
    address = address.strip().lower()
    if not EMAIL_ADDRESS.match(address) or len(address) > 254:
        if problems is not None:
            problems["from"] = "Give the sender's address."
            return "", ""
        raise ValidationFailed({"from": "The sender's address is missing or not valid."})
    name = " ".join(name.split())[:200]
    return name or address.split("@")[0], address


def _addresses(values: list[str]) -> tuple[str, ...]:
    try:
        pairs = getaddresses([v[:MAX_ADDRESS_HEADER] for v in values if v])
    except (RecursionError, ValueError):
        pairs = []
    found = [addr.lower() for _, addr in pairs if "@" in addr]
    return tuple(dict.fromkeys(found))


def _message_ids(value: str) -> tuple[str, ...]:
    return tuple(m for m in _MESSAGE_ID.findall(value or "") if len(m) <= MAX_MESSAGE_ID)


def _message_id(value: str, raw: bytes) -> str:
    """The message's own id; a message without one gets a stable one made from its bytes,
    so that posting it twice is still recognised."""
    ids = _message_ids(value)
    if ids:
        return ids[0]
    return made_up_message_id(hashlib.sha256(raw).hexdigest())


def automatic_reason(headers: Any, content_type: str) -> str | None:
    """Why a machine sent this (RFC 3834 and what help desks learned), or None."""
    auto = headers.get("Auto-Submitted").lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if content_type == "multipart/report":
        return "a delivery report (bounce)"
    if "return-path" in headers.names() and headers.get("Return-Path").strip() in ("", "<>"):
        return "an empty Return-Path (a bounce)"
    precedence = headers.get("Precedence").lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    if any(name.startswith("list-") for name in headers.names()):
        return "a mailing list"
    if headers.get("X-Auto-Response-Suppress"):
        return "X-Auto-Response-Suppress"
    return None


def html_to_text(html: str) -> str:
    """Readable text from HTML: paragraphs and line breaks kept, links as [text](url)."""
    if not html.strip():
        return ""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    text = converter.handle(html)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def trim_reply(text: str) -> str:
    """The new part of a reply: without the quoted history and a common signature; the
    whole text if trimming leaves nothing."""
    if not text.strip():
        return text
    try:
        parsed = EmailReplyParser(languages=REPLY_LANGUAGES).read(text)
        latest = (parsed.replies[0].body if parsed.replies else "") or parsed.latest_reply or ""
    except Exception:  # a third-party heuristic must never lose the message
        return text.strip()
    return _without_trailing_quote(latest.strip()) or text.strip()


def _without_trailing_quote(text: str) -> str:
    """Without a block of `>` lines that ends the text (quoted without an "On ... wrote:"
    line, which the reply parser needs to see it)."""
    lines = text.splitlines()
    end = len(lines)
    while end and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith(">")):
        end -= 1
    if end == len(lines) or not any(line.lstrip().startswith(">") for line in lines[end:]):
        return text
    return "\n".join(lines[:end]).rstrip()
