"""An inbound email, from raw RFC 5322 bytes or a mail provider's JSON, as one dataclass.

Parsed with the standard `email` package (policy.default): headers decoded (RFC 2047);
each text part decoded with the charset it declares, and a wrong or unknown charset
degrades to replacement characters instead of failing; text/plain preferred, an HTML-only
message made into readable text (html2text); attachments, inline images and a forwarded
`message/rfc822` kept as files. What the service needs to thread and to refuse loops is
read here too: the Message-IDs it refers to, and whether it was sent by a machine; and,
for a forward, the email it forwards (`forwarded`: an attached message/rfc822, or the block
a mail client wrote, forwarded.py), which the inbound service may believe (forwarding.py).

Parsing is total: whatever the bytes, the result is an InboundEmail or a 4xx naming what
is wrong, and a sender that cannot be read is not wrong (DESIGN.md section 6: mail is
never refused for its content): it falls back to Reply-To, Sender and Return-Path, then to
a lenient reading of each (`From: Test test@example.com`), and an email with no address in
any of them comes back with no sender and its original kept, for the quarantine. NULs,
lone surrogates and control characters become U+FFFD (PostgreSQL refuses them); a header
the package cannot read is read raw. Everything is bounded before it reaches a parser or a
pattern that is super-linear on some input (issue 18): the package's parser is quadratic
on some hostile headers (16 KiB of `"a\"` in a Content-Type, or 32 KB in a Message-ID,
take seconds), so each header is cut to a length no real mail needs, and the Message-IDs
are read raw (RFC 2047 forbids encoded-words in them; decoding them made 200 KB of
`=?utf-8?q?@…?=` into one 20-second search). A message of more than MAX_PARTS parts, or
nested more than MAX_DEPTH deep, is refused (400 / 550): counted cheaply before the parse
where the boundaries show it, and in the parsed tree in any case. The readable text
(readable.py), trimming included, is made here, so that the parse's deadline (sandbox.py)
covers all of it; `parse_mime_unread` is what is stored when it runs out.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email
import email.policy
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any

from supportdesk.core.errors import BadRequest, ValidationFailed
from supportdesk.core.text import MAIL_ADDRESS
from supportdesk.core.vocabulary import MAX_EMAIL, MAX_NAME
from supportdesk.mail.inbound.forwarded import (
    ATTACHED,
    Forwarded,
    is_forward_subject,
    read_forwarded,
)
from supportdesk.mail.inbound.original_html import InlineImage, sanitized_html
from supportdesk.mail.inbound.readable import html_to_text, trim_reply
from supportdesk.mail.inbound.sender_auth.verdicts import DMARC_FIELD, from_dmarc_result
from supportdesk.mail.outbound.thread_tokens import made_up_message_id

log = logging.getLogger("supportdesk.mail.inbound.parse")

# Visible ASCII but the angle brackets, and one `@` (RFC 5322 3.6.4): an id with anything
# else is no id we can store. Neither side can hold `<`, `>` or `@`, so a search of a
# hostile header is linear (with `@` in both sides it backtracked quadratically).
_MESSAGE_ID = re.compile(r"<[!-;=?A-~]+@[!-;=?A-~]+>")
MAX_MESSAGE_ID = 250
MAX_PARTS = 100
MAX_DEPTH = 20  # multiparts and attached messages inside each other; real mail: under 10
_ADDRESS_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "sender"}
MAX_ADDRESS_HEADER = 4096  # about a hundred addresses
MAX_CONTENT_HEADER = 512  # Content-Type and the like: a type and a few parameters
MAX_HEADER = 8192  # any other header (a Subject is stored to MAX_SUBJECT characters)
# The Message-IDs, read raw: In-Reply-To holds one or a few; References the thread's root
# and its newest, which matter for threading, so a long one keeps its head and its tail.
MAX_MESSAGE_ID_HEADER = 1024
MAX_IN_REPLY_TO = 4096
MAX_REFERENCES = 16384
TOO_MANY_PARTS = f"The message has more than {MAX_PARTS} parts."
TOO_DEEP = f"The message nests its parts more than {MAX_DEPTH} deep."
MAX_FROM_HEADER = 998  # of the From header kept to show in the quarantine: one line's worth
# Where the sender's address is looked for, in this order (DESIGN.md section 6): each header
# read strictly, and then word by word ("lenient"). The From line's words come before Sender
# and Return-Path: `From: Test test@example.com` names the person who wrote, while
# Return-Path is the envelope's sender, often a bounce address of a mailing service.
SENDER_HEADERS = ("From", "Reply-To", "Sender", "Return-Path")
_SENDER_READINGS = (
    ("From", False),
    ("Reply-To", False),
    ("From", True),
    ("Sender", False),
    ("Return-Path", False),
    ("Reply-To", True),
    ("Sender", True),
    ("Return-Path", True),
)
RFC822 = "message/rfc822"
JSON = "application/json"
UNREAD_TEXT = "(This email could not be read in time; the whole message is attached.)"
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
        elif len(value) > MAX_HEADER:
            value = value[:MAX_HEADER]
        return super().header_fetch_parse(name, value)


_POLICY = _CappedPolicy()
# A forwarded message is kept as it came: its headers written back raw, not parsed again
# to be refolded (which is where a hostile one would cost).
_AS_RECEIVED = _POLICY.clone(refold_source="none")


@dataclass(frozen=True)
class InboundFile:
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    inline: bool = False
    # The whole message as received, attached because it (or a forwarded message in it)
    # could not be read: kept whatever the size of one file may be (the request's own
    # limit bounds it).
    original: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "filename", storable(self.filename))


@dataclass(frozen=True)
class Original:
    """The email as it came (an RFC 5322 message, or the webhook's JSON body): kept with
    an email that has no sender, so that the quarantine can store it and an ADMIN can open
    a ticket from it later."""

    data: bytes = field(repr=False)
    content_type: str  # RFC822 or JSON


@dataclass(frozen=True)
class InboundEmail:
    sender: str  # lower-cased address; "" when no header names one (quarantined)
    sender_name: str
    recipients: tuple[str, ...]  # To, Cc and delivery addresses, lower-cased
    subject: str
    text: str  # the whole text, as written (quoted history included)
    # The new text of a reply: quoted history and common signatures trimmed.
    display_text: str
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    files: tuple[InboundFile, ...] = ()
    # Why a machine sent this (an auto-reply, a bounce, a list), or None for a person.
    automatic: str | None = None
    from_header: str = ""  # as it came (decoded), cut to MAX_FROM_HEADER: shown if quarantined
    original: Original | None = None  # set when there is no sender: what the quarantine keeps
    # Whether DMARC authenticated the From domain (pass, fail, none: sender_auth/): set by
    # each way in before the inbound service, which never threads a fail.
    sender_auth: str = "none"
    # The email it forwards, when it is a forward (forwarded.py): whether to believe it is
    # the inbound service's to decide (DESIGN.md section 11).
    forwarded: Forwarded | None = None
    # The HTML part, sanitized to be shown in a sandboxed frame (original_html.py), or "".
    html: str = field(default="", repr=False)
    # The people of its To and Cc, as (name, lower-cased address): who may become the
    # ticket's participants (section 11). Only addresses we could answer (MAIL_ADDRESS).
    copied: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("sender_name", "subject", "text", "display_text", "from_header", "html"):
            object.__setattr__(self, name, storable(getattr(self, name)))

    @property
    def referenced_ids(self) -> tuple[str, ...]:
        """Message-IDs this one answers, nearest first."""
        seen: dict[str, None] = {}
        for message_id in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(message_id, None)
        return tuple(seen)


# --- raw MIME ---------------------------------------------------------------------------------


def parse_mime(raw: bytes) -> InboundEmail:
    """An RFC 5322 message, as the SMTP listener or a provider's raw mode delivers it."""
    if not raw.strip():
        raise BadRequest("The message is empty.")
    refuse_many_parts(raw)
    try:
        message = email.message_from_bytes(raw, policy=_POLICY)
        _check_structure(message)
        return _read(message, raw)
    except RecursionError:  # nested beyond what the package's recursion takes
        raise BadRequest(TOO_DEEP) from None


def _read(message: EmailMessage, raw: bytes) -> InboundEmail:
    headers = _HeaderView(message)
    sender_name, sender = usable_sender(headers.get, lambda n: headers.raw(n, MAX_ADDRESS_HEADER))
    text, html, files = _walk(message, raw)
    if not text.strip() and html:
        text, cut = html_to_text(html)
        if cut and not any(f.original for f in files):  # the rest is in the original
            files.append(InboundFile("message.eml", "message/rfc822", raw, original=True))
    text = storable(text)
    delivery = [headers.get(name) for name in ("To", "Cc", "Delivered-To", "X-Original-To")]
    subject = headers.get("Subject").strip() or "(no subject)"
    return InboundEmail(
        sender=sender,
        sender_name=sender_name,
        recipients=_addresses(delivery),
        subject=subject,
        text=text,
        display_text=trim_reply(text),
        message_id=_message_id(headers.raw("Message-ID"), raw),
        in_reply_to=_message_ids(headers.raw("In-Reply-To"), MAX_IN_REPLY_TO),
        references=_message_ids(headers.raw("References"), MAX_REFERENCES),
        files=tuple(files),
        automatic=automatic_reason(headers, message.get_content_type()),
        from_header=as_written(headers.raw("From", MAX_FROM_HEADER)),
        original=None if sender else Original(raw, RFC822),
        forwarded=forwarded_original(subject, text, files),
        html=sanitized_html(html, lambda: _inline_images(message)),
        copied=_people(delivery[:2]),
    )


def _inline_images(message: EmailMessage) -> dict[str, InlineImage]:
    """The email's image parts by Content-ID (lower case, no brackets): what `cid:`
    names in its HTML (a multipart/related email's logo)."""
    images: dict[str, InlineImage] = {}
    for part in message.walk():
        content_id = _header(part, "content-id")
        if content_id is None or _part_info(part).maintype != "image":
            continue
        key = str(content_id).strip().strip("<>").lower()
        images.setdefault(key, InlineImage(_part_info(part).content_type, _payload(part)))
    return images


def _payload(part: EmailMessage) -> bytes:
    try:
        return part.get_payload(decode=True) or b""
    except Exception:  # someone else's encoding: the image is not shown
        return b""


def as_written(value: str) -> str:
    """A header as its writer wrote it, RFC 2047 words decoded, nothing else changed (the
    email package's own reading of a garbage From quotes it)."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # someone else's bytes: shown as they came
        return value


# A boundary parameter, and a line that starts with `--` (a line ends at CR, LF or CRLF,
# as for the email package's parser): both found in one linear pass each.
_BOUNDARY_PARAM = re.compile(rb'boundary\*?[0-9]*\*?[ \t]*=[ \t]*"?([^"\r\n;]*)', re.I)
_DASH_LINE = re.compile(rb"(?<![^\r\n])--([^\r\n]*)")


def refuse_many_parts(raw: bytes) -> None:
    """BadRequest for a message whose boundaries already show more than MAX_PARTS parts
    (or as many multiparts inside each other), before the parser builds them all: 20,000
    parts took it about 10 s a MB. The parsed tree is counted again (_check_structure)."""
    declared = _BOUNDARY_PARAM.findall(raw)
    if len(declared) > MAX_PARTS:
        raise BadRequest(TOO_MANY_PARTS)
    # An empty one delimits nothing (the package ignores it) but would count every `--`.
    boundaries = {b.rstrip(b" \t") for b in declared} - {b""}
    delimiters = 0
    for line in _DASH_LINE.finditer(raw):
        if line.group(1).rstrip(b" \t") in boundaries:
            delimiters += 1
            if delimiters > MAX_PARTS:
                raise BadRequest(TOO_MANY_PARTS)


def _check_structure(message: EmailMessage) -> None:
    """BadRequest for more than MAX_PARTS parts, or parts nested more than MAX_DEPTH
    deep, counted in the parsed tree (attached messages' parts included)."""
    parts = 0
    stack: list[tuple[EmailMessage, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > MAX_PARTS:
            raise BadRequest(TOO_MANY_PARTS)
        if depth > MAX_DEPTH:
            raise BadRequest(TOO_DEEP)
        if part.is_multipart():  # a multipart, or an attached message
            children = part.get_payload()
            if len(children) > MAX_PARTS:
                raise BadRequest(TOO_MANY_PARTS)
            stack.extend((child, depth + 1) for child in children)


class _HeaderView:
    """Header values as text, whatever the message did to them (a header the email
    package cannot parse is read raw rather than failing the message)."""

    def __init__(self, message: EmailMessage):
        self.message = message

    def get(self, name: str) -> str:
        try:
            value = self.message.get(name)
        except Exception:  # a malformed header of someone else's: read it raw
            value = self.raw(name, MAX_HEADER)
        return "" if value is None else " ".join(str(value).split())

    def raw(self, name: str, limit: int = MAX_MESSAGE_ID_HEADER) -> str:
        """The first `name` header as it came (unfolded, not decoded), cut to `limit`
        characters, keeping its head and its tail."""
        lowered = name.lower()
        for key, value in self.message.raw_items():
            if key.lower() == lowered:
                return _capped(str(value), limit)
        return ""

    def names(self) -> set[str]:
        return {name.lower() for name in self.message}


_BODY_TYPES = ("text/plain", "text/html")


def _walk(message: EmailMessage, raw: bytes) -> tuple[str, str, list[InboundFile]]:
    """(the text/plain body, the HTML body, the files), from every part."""
    texts: list[str] = []
    htmls: list[str] = []
    files: list[InboundFile] = []
    stack: list[EmailMessage] = [message]
    while stack:
        part = stack.pop(0)
        info = _part_info(part)
        content_type, disposition = info.content_type, info.disposition
        if content_type == "message/rfc822" or (
            info.maintype == "message" and disposition == "attachment"
        ):
            forwarded = _forwarded(part, raw)
            if not (forwarded.original and any(f.original for f in files)):
                files.append(forwarded)
            continue
        if part.is_multipart():
            children = part.get_payload() if info.maintype == "multipart" else []
            if content_type == "multipart/report":
                # A bounce: its human-readable part is the text; the rest is machine data.
                children = [p for p in children if _part_info(p).content_type == "text/plain"]
            stack[:0] = children
            continue
        body = content_type in _BODY_TYPES and disposition != "attachment" and info.filename is None
        if body and content_type == "text/plain":
            texts.append(_text(part, info))
        elif body:
            htmls.append(_text(part, info))
        else:  # every other part is a file: kept if the checks allow, else noted
            files.append(
                InboundFile(
                    info.filename or f"attachment.{content_type.split('/')[-1]}",
                    content_type,
                    part.get_payload(decode=True) or b"",
                    inline=disposition == "inline" or part.get("Content-ID") is not None,
                )
            )
    return "\n\n".join(t for t in texts if t.strip()), "\n".join(htmls), files


@dataclass(frozen=True)
class _PartInfo:
    """A part's Content-Type and Content-Disposition, each parsed once: policy.default
    parses a header again at every read, and the package's own getters read them over
    and over (a three-part email's Content-Type was parsed 29 times, half its parse)."""

    content_type: str
    params: Mapping[str, str]
    disposition: str | None
    filename: str | None

    @property
    def maintype(self) -> str:
        return self.content_type.split("/", 1)[0]


def _part_info(part: EmailMessage) -> _PartInfo:
    """As the package's get_content_type, get_content_disposition and get_filename
    would read them (a type that is not `a/b` is text/plain)."""
    header = _header(part, "content-type")
    if header is None:
        content_type, params = part.get_default_type(), {}
    else:
        content_type = str(header).partition(";")[0].strip().lower()
        if content_type.count("/") != 1:
            content_type = "text/plain"
        params = dict(getattr(header, "params", {}))
    disposition_header = _header(part, "content-disposition")
    disposition, disposition_params = None, {}
    if disposition_header is not None:
        disposition = str(disposition_header).partition(";")[0].strip().lower()
        disposition_params = dict(getattr(disposition_header, "params", {}))
    filename = disposition_params.get("filename", params.get("name"))
    return _PartInfo(
        content_type, params, disposition, None if filename is None else str(filename).strip()
    )


def _header(part: EmailMessage, name: str) -> Any:
    try:
        return part.get(name)
    except Exception:  # a header the package cannot read: as if it were not there
        return None


def _forwarded(part: EmailMessage, raw: bytes) -> InboundFile:
    """The forwarded message as an .eml file; if the email package cannot write it back
    (8-bit text its generator fails on), the whole email `raw` instead: kept, not lost."""
    inner = part.get_payload()
    if isinstance(inner, list) and inner:
        subject = str(inner[0].get("Subject", "") or "")
        try:
            data = inner[0].as_bytes(policy=_AS_RECEIVED)
        except Exception:  # the package's generator on someone else's bytes
            return InboundFile("message.eml", "message/rfc822", raw, original=True)
    else:
        data = part.get_payload(decode=True) or b""
        subject = ""
    name = re.sub(r"[^\w .-]", "", subject)[:80].strip() or "forwarded message"
    return InboundFile(f"{name}.eml", "message/rfc822", data)


def _text(part: EmailMessage, info: _PartInfo) -> str:
    """A text part's content with \n line ends. A wrong or unknown charset degrades to
    replacement characters; bytes that are valid UTF-8 are read as UTF-8 whatever the
    label says (the commonest mislabelling); format=flowed lines are joined again."""
    raw = part.get_payload(decode=True) or b""
    content: str | None
    try:
        content = raw.decode(str(info.params.get("charset") or "us-ascii"), "replace")
    except (LookupError, ValueError):  # unknown, or not even a name (a NUL in it)
        content = None
    if content is None or "\ufffd" in content:
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError:
            content = content if content is not None else raw.decode("utf-8", "replace")
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    if str(info.params.get("format", "")).lower() == "flowed":
        content = _unflow(content, str(info.params.get("delsp", "")).lower() == "yes")
    return content


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


def parse_json(payload: Mapping[str, Any], body: bytes) -> InboundEmail:
    """`{from, to, cc?, subject, text?, html?, message_id, in_reply_to?, references?,
    headers?, attachments?: [{filename, content_type, content_base64}]}`, read from the
    request `body` (attached whole when its HTML is too long to be made readable)."""
    email, text, html = _from_json(payload)
    files = email.files
    if not text.strip():
        text, cut = html_to_text(html)
        if cut:
            files = (*files, _original_json(body))
    text = storable(text.replace("\r\n", "\n"))
    return dataclasses.replace(
        _kept_if_no_sender(email, body),
        text=text,
        display_text=trim_reply(text),
        files=files,
        forwarded=forwarded_original(email.subject, text, files),
        html=sanitized_html(html),
    )


def _original_json(body: bytes) -> InboundFile:
    return InboundFile("message.json", JSON, body, original=True)


def _kept_if_no_sender(email: InboundEmail, body: bytes) -> InboundEmail:
    return email if email.sender else dataclasses.replace(email, original=Original(body, JSON))


def parse_json_unread(payload: Mapping[str, Any], body: bytes) -> InboundEmail:
    """The payload without its text read (what parse_json stores when it ran out of time):
    its fields checked as there, and the whole request `body` attached."""
    email, _, _ = _from_json(payload)
    original = (_original_json(body),)
    return dataclasses.replace(
        _kept_if_no_sender(email, body),
        text=UNREAD_TEXT,
        display_text=UNREAD_TEXT,
        files=original,
    )


def _from_json(payload: Mapping[str, Any]) -> tuple[InboundEmail, str, str]:
    """(the email without its text, the text field, the html field), or ValidationFailed
    naming every field that is wrong."""
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
        DMARC_FIELD.name,
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

    from_field = text_field("from")
    headers = payload.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        problems["headers"] = "Give headers as an object of texts."
        headers = {}
    view = _MappingHeaders(headers)

    def header(name: str) -> str:  # the `from` field is the From header
        return " ".join(from_field.split()) if name == "From" else view.get(name)

    sender_name, sender = usable_sender(header)
    files = _json_files(payload.get("attachments"), problems)
    message_id = text_field("message_id", required=True)
    if message_id and not _message_ids(message_id):
        problems["message_id"] = "Give a Message-ID like <id@host>."
    text, html, subject = text_field("text"), text_field("html"), text_field("subject")
    to, cc = text_field("to"), text_field("cc")
    in_reply_to, references = text_field("in_reply_to"), text_field("references")
    dmarc = DMARC_FIELD.read(payload, problems, {}) or "none"
    if problems:  # every field read: one answer names all that is wrong
        raise ValidationFailed(problems, "The inbound email payload is not valid.")
    email = InboundEmail(
        sender=sender,
        sender_name=sender_name,
        recipients=_addresses([to, cc]),
        subject=" ".join(subject[:MAX_HEADER].split()) or "(no subject)",
        text="",
        display_text="",
        message_id=_message_ids(message_id)[0],
        in_reply_to=_message_ids(in_reply_to, MAX_IN_REPLY_TO),
        references=_message_ids(references, MAX_REFERENCES),
        files=tuple(files),
        automatic=automatic_reason(view, view.get("Content-Type").split(";")[0].strip().lower()),
        from_header=header("From")[:MAX_FROM_HEADER],
        sender_auth=from_dmarc_result(dmarc),
        copied=_people([to, cc]),
    )
    return email, text, html


# --- a message that could not be read in time -------------------------------------------------


def parse_mime_unread(raw: bytes) -> InboundEmail:
    """What can be told of a message without parsing it, for one whose parse ran out of
    time (or failed): its headers read by hand, each cut short, in one linear pass; the
    sender as for any email (usable_sender); no text but a line saying why, and the whole
    message attached. It still threads by its Message-IDs and subject."""
    headers = _MappingHeaders(_raw_headers(raw))
    sender_name, sender = usable_sender(headers.get)
    subject = str(_POLICY.header_fetch_parse("Subject", headers.get("Subject")[:1000]))
    delivery = [headers.get(name) for name in ("To", "Cc", "Delivered-To", "X-Original-To")]
    return InboundEmail(
        sender=sender,
        sender_name=sender_name,
        recipients=_addresses(delivery),
        subject=" ".join(subject.split()) or "(no subject)",
        text=UNREAD_TEXT,
        display_text=UNREAD_TEXT,
        message_id=_message_id(headers.get("Message-ID"), raw),
        in_reply_to=_message_ids(headers.get("In-Reply-To"), MAX_IN_REPLY_TO),
        references=_message_ids(headers.get("References"), MAX_REFERENCES),
        files=(InboundFile("message.eml", "message/rfc822", raw, original=True),),
        automatic=automatic_reason(
            headers, headers.get("Content-Type").split(";")[0].strip().lower()
        ),
        from_header=as_written(headers.get("From")[:MAX_FROM_HEADER]),
        original=None if sender else Original(raw, RFC822),
        copied=_people(delivery[:2]),
    )


MAX_HEADER_SECTION = 256 * 1024
_LINE_END = re.compile(rb"\r\n|\r|\n")


def _raw_headers(raw: bytes) -> dict[str, str]:
    """The first value of each header name (lower-cased), unfolded and cut to MAX_HEADER,
    from the first MAX_HEADER_SECTION bytes up to the first empty line."""
    found: dict[str, list[bytes]] = {}
    current: list[bytes] | None = None
    for line in _LINE_END.split(raw[:MAX_HEADER_SECTION]):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        name, colon, value = line.partition(b":")
        key = name.strip().decode("ascii", "replace").lower()
        current = None if not colon or key in found else found.setdefault(key, [value])
    return {
        key: b" ".join(lines).decode("utf-8", "replace")[:MAX_HEADER]
        for key, lines in found.items()
    }


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


# --- the email a forward carries ----------------------------------------------------------------


def forwarded_original(
    subject: str, text: str, files: list[InboundFile] | tuple[InboundFile, ...]
) -> Forwarded | None:
    """The original of a forward (DESIGN.md section 11): an attached message/rfc822 under a
    forward's subject (or with no words of the forwarder's), else the block a mail client
    wrote into `text` (forwarded.py); None for anything else. Never fails the parse: an
    original that cannot be read is no original, and the email is an ordinary one."""
    try:
        attached = [f for f in files if f.content_type == RFC822 and not f.original]
        if len(attached) == 1 and (is_forward_subject(subject) or not text.strip()):
            found = _attached_original(attached[0], text)
            if found is not None:
                return found
        found = read_forwarded(text, subject)
        if found is None:
            return None
        return dataclasses.replace(found, display_text=trim_reply(found.text))
    except Exception:  # someone else's bytes: an ordinary email, as it was before forwards
        log.warning("the original of a forward could not be read", exc_info=True)
        return None


def _attached_original(file: InboundFile, note: str) -> Forwarded | None:
    message = email.message_from_bytes(file.data, policy=_POLICY)
    _check_structure(message)
    headers = _HeaderView(message)
    name, sender = usable_sender(headers.get, lambda n: headers.raw(n, MAX_ADDRESS_HEADER))
    if not sender:
        return None
    text, html, files = _walk(message, file.data)
    if not text.strip() and html:
        text = html_to_text(html).text
    text = storable(text).strip()
    return Forwarded(
        how=ATTACHED,
        sender=sender,
        sender_name=storable(name),
        subject=storable(headers.get("Subject")),
        text=text,
        date=storable(headers.get("Date")),
        to=_people_in(headers.get("To")),
        cc=_people_in(headers.get("Cc")),
        note=note.strip(),
        display_text=trim_reply(text),
        files=tuple(f for f in files if not f.original),
    )


def _people_in(value: str) -> tuple[tuple[str, str], ...]:
    try:
        pairs = getaddresses([value[:MAX_ADDRESS_HEADER]])
    except (RecursionError, ValueError):
        return ()
    found = (_named(name, address) for name, address in pairs)
    return tuple(dict.fromkeys(p for p in found if p is not None))


# --- what both need -----------------------------------------------------------------------------


def usable_sender(
    header: Callable[[str], str], raw: Callable[[str], str] | None = None
) -> tuple[str, str]:
    """(name, lower-cased address) of who sent the email, or ("", "") when nothing names
    one (DESIGN.md section 6), in the order of _SENDER_READINGS: a header read strictly as
    its decoded `header` value, or leniently, the first address among its words as `raw`
    gives them (`Test test@example.com`, which the email package reads as the quoted local
    part `"Test test"@example.com`). A host with no dot is an address (`root@intranet`)."""
    raw = raw or header
    for name, lenient in _SENDER_READINGS:
        if lenient:
            found = _address_among_words(raw(name)[:MAX_ADDRESS_HEADER])
        else:
            found = _address_in(header(name)[:MAX_ADDRESS_HEADER])
        if found is not None:
            return found
    return "", ""


def _address_in(value: str) -> tuple[str, str] | None:
    try:
        name, address = parseaddr(value)
    except (RecursionError, ValueError):  # ((((… nested beyond what the parser recurses
        return None
    return _named(name, address)


# What separates the words of a header read leniently: white space, and what encloses or
# lists addresses. An address is one word with one `@`; split, not searched for, so that
# no pattern runs from each character of a long header.
_WORD_BREAKS = re.compile(r'[\s<>()\[\],;:"]+')


def _address_among_words(value: str) -> tuple[str, str] | None:
    words = [w for w in _WORD_BREAKS.split(value) if w]
    for i, word in enumerate(words):
        if word.count("@") == 1:
            rest = " ".join(words[:i] + words[i + 1 :])
            found = _named(rest, word.strip(".'"))
            if found is not None:
                return found
    return None


def _named(name: str, address: str) -> tuple[str, str] | None:
    """(name, address) if `address` is one we can store and answer, the name tidied (the
    address's local part when there is none)."""
    address = address.strip().lower()
    if len(address) > MAX_EMAIL or not MAIL_ADDRESS.match(address):
        return None
    return display_name_of(name, address), address


def display_name_of(name: str, address: str) -> str:
    """`name` tidied (RFC 2047 words decoded, where the headers were read raw), else the
    address's local part: within MAX_NAME either way (a local part may be longer than a
    name may be)."""
    name = as_written(name[:MAX_ADDRESS_HEADER]) if "=?" in name else name
    return (" ".join(name.split()) or address.split("@")[0])[:MAX_NAME]


def _addresses(values: list[str]) -> tuple[str, ...]:
    try:
        pairs = getaddresses([v[:MAX_ADDRESS_HEADER] for v in values if v])
    except (RecursionError, ValueError):
        pairs = []
    found = [addr.lower() for _, addr in pairs if "@" in addr]
    return tuple(dict.fromkeys(found))


def _people(values: list[str]) -> tuple[tuple[str, str], ...]:
    """(name or "", address) of each address in To and Cc that we could answer, once each."""
    try:
        pairs = getaddresses([v[:MAX_ADDRESS_HEADER] for v in values if v])
    except (RecursionError, ValueError):
        pairs = []
    people: dict[str, tuple[str, str]] = {}
    for name, address in pairs:
        found = _named(name, address) if "@" in address else None
        if found is not None:
            people.setdefault(found[1], (found[0] if name.strip() else "", found[1]))
    return tuple(people.values())


def _message_ids(value: str, limit: int = MAX_MESSAGE_ID_HEADER) -> tuple[str, ...]:
    ids = _MESSAGE_ID.findall(_capped(value or "", limit))
    return tuple(m for m in ids if len(m) <= MAX_MESSAGE_ID)


def _capped(value: str, limit: int) -> str:
    """`value` if it is at most `limit` characters; else its first quarter and its last
    three quarters of that, so a long References keeps the thread's root and newest."""
    if len(value) <= limit:
        return value
    return value[: limit // 4] + " " + value[-(limit - limit // 4) :]


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
