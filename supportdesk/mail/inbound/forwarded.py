"""The customer's email inside a staff member's forward (DESIGN.md section 11), read from
the text of the forward: the block that Gmail, Outlook and Apple Mail write above the
original, in plain text or as the parser's text of an HTML-only forward (html2text: `\\-`
escapes, `[addr](mailto:addr)` links, `* * *` for a rule).

- Gmail: `---------- Forwarded message ---------` (German: `Weitergeleitete Nachricht`),
  then `From:`/`Date:`/`Subject:`/`To:`/`Cc:` lines (`Von:` and the rest in German).
- Outlook: `-----Original Message-----` (`-----Ursprüngliche Nachricht-----`), a line of
  underscores, or (from HTML) a rule or nothing, then `From:`/`Sent:`/`To:`/`Cc:`/`Subject:`
  (`Von:`/`Gesendet:`/`An:`/`Cc:`/`Betreff:`); `From: Name [mailto:addr]` in older ones.
  Outlook writes the same block above the history of a reply, so it counts only when the
  subject says the email is a forward (`FW:`, `Fwd:`, `WG:`...).
- Apple Mail: `Begin forwarded message:` (`Anfang der weitergeleiteten Nachricht:`), often
  with each line quoted (`> `), then `From:`/`Subject:`/`Date:`/`To:`/`Cc:`
  (`Von:`/`Betreff:`/`Datum:`/`An:`/`Kopie:`).

The original of a forward sent as an attached `message/rfc822` is read by parse.py (it
needs the email package); it fills the same `Forwarded`.

Pure and total: whatever the text, `read_forwarded` returns a Forwarded or None, in time
linear in the text (each line is matched by anchored patterns without nested repetition,
lines longer than MAX_LINE are never header lines, and only the first MAX_SCAN characters
are searched for the block). It runs in the parse's sandbox child (sandbox.py), whose
result crosses the process boundary: every field is plain data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from typing import Any

from supportdesk.core.text import MAIL_ADDRESS
from supportdesk.core.vocabulary import MAX_EMAIL, MAX_NAME

MAX_SCAN = 64_000  # characters searched for the block: the forwarder's words are short
MAX_LINE = 2_000  # a longer line is no header line (an Outlook To: of many people fits)
MAX_HEADER_LINES = 12  # From, Sent, To, Cc, Subject, and the like, with a few to spare
MAX_PEOPLE = 50  # of a To: or Cc: line

GMAIL, OUTLOOK, APPLE, ATTACHED = "gmail", "outlook", "apple", "attached"

# Markers, matched against a line with its quoting, html2text's escapes and white space
# taken off.
_GMAIL_MARKER = re.compile(
    r"-{2,} ?(?:forwarded message|weitergeleitete nachricht|message transféré"
    r"|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht) ?-{2,}",
    re.IGNORECASE,
)
_APPLE_MARKER = re.compile(
    r"(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message réexpédié|inicio del mensaje reenviado) ?:",
    re.IGNORECASE,
)
_OUTLOOK_MARKER = re.compile(
    r"-{2,} ?(?:original message|ursprüngliche nachricht|message d'origine"
    r"|mensaje original|messaggio originale|oorspronkelijk bericht) ?-{2,}"
    r"|_{10,}|(?:\* ){2,}\*",
    re.IGNORECASE,
)
# A forward's subject: `Fwd: Re: The printer` and the like, in the languages above.
_FORWARD_PREFIX = re.compile(
    r"^(?:\s*(?:fwd?|wg|tr|rv|enc|doorst|vb|vl)\s*(?:\[\d{1,4}\])?\s*:)+\s*", re.IGNORECASE
)
# Header names as the clients write them, each to the field it fills.
_FIELDS = {
    "from": "from",
    "von": "from",
    "de": "from",
    "sent": "date",
    "gesendet": "date",
    "date": "date",
    "datum": "date",
    "to": "to",
    "an": "to",
    "cc": "cc",
    "kopie": "cc",
    "subject": "subject",
    "betreff": "subject",
    "objet": "subject",
    "reply-to": "reply_to",
    "antwort an": "reply_to",
}
_HEADER_LINE = re.compile(r"([A-Za-z][A-Za-z -]{0,14}?) ?: ?(.*)")
_QUOTE = re.compile(r"(?:> ?)+")
_ESCAPE = re.compile(r"\\([-*_#+.!\[\]()`>])")  # html2text's markdown escapes
_MAILTO_LINK = re.compile(r"\[([^\[\]]{0,300})\]\(mailto:([^()\s]{1,300})\)")
_OLD_OUTLOOK_ADDRESS = re.compile(r"\[mailto:([^\[\]\s]{1,300})\]")
_EMPHASIS = re.compile(r"\*\*")  # not `__`: a line of underscores is a marker

Person = tuple[str, str]  # (name, lower-cased address)


@dataclass(frozen=True)
class Forwarded:
    """The original email of a forward, as the forward shows it."""

    how: str  # GMAIL, OUTLOOK, APPLE or ATTACHED
    sender: str  # the original's sender, lower-cased
    sender_name: str
    subject: str  # "" when the block names none
    text: str  # the original's text
    date: str  # as the block writes it ("" when it names none)
    to: tuple[Person, ...] = ()
    cc: tuple[Person, ...] = ()
    # What the forwarder wrote above the block (or, with an attached original, the whole
    # text of the forward): their own words, "" when they wrote none.
    note: str = ""
    # The original's text with its own quoted history trimmed (parse.py fills it in).
    display_text: str = ""
    # The original's files (parse.py's InboundFile), for an attached original.
    files: tuple[Any, ...] = ()


def is_forward_subject(subject: str) -> bool:
    return bool(_FORWARD_PREFIX.match(subject[:200]))


def without_forward_prefix(subject: str) -> str:
    """`Fwd: FW: The printer` as `The printer`."""
    return _FORWARD_PREFIX.sub("", subject[:1000], count=1).strip()


def read_forwarded(text: str, subject: str = "") -> Forwarded | None:
    """The original email in a forward's `text`, or None when it holds no block we know
    (or one that names no usable sender). `subject` is the forward's own: an Outlook block
    counts only under a forward's subject."""
    lines = text[:MAX_SCAN].split("\n")
    outlook_ok = is_forward_subject(subject)
    for index, line in enumerate(lines):
        if len(line) > MAX_LINE:
            continue
        found = _block_at(lines, index, _plain(line), outlook_ok)
        if found is not None:
            return found
    return None


def _block_at(lines: list[str], index: int, line: str, outlook_ok: bool) -> Forwarded | None:
    """The block starting at `lines[index]` (as `line`, made plain), or None."""
    if _GMAIL_MARKER.fullmatch(line):
        how, start = GMAIL, index + 1
    elif _APPLE_MARKER.fullmatch(line):
        how, start = APPLE, index + 1
    elif outlook_ok and _OUTLOOK_MARKER.fullmatch(line):
        how, start = OUTLOOK, index + 1
    elif outlook_ok and _field_of(line) == "from":
        how, start = OUTLOOK, index  # Outlook's HTML: the header block with no marker
    else:
        return None
    quoted = bool(_QUOTE.match(lines[index]))
    headers, body_start = _headers(lines, start, quoted)
    if how == OUTLOOK and start == index and "date" not in headers:
        return None  # a From: line alone, in the text: not a header block
    sender_name, sender = _person(headers.get("from", ""))
    if not sender:
        return None
    body = [_unquoted(line) if quoted else line for line in lines[body_start:]]
    return Forwarded(
        how=how,
        sender=sender,
        sender_name=sender_name,
        subject=" ".join(headers.get("subject", "").split()),
        text="\n".join(body).strip(),
        date=" ".join(headers.get("date", "").split()),
        to=_people(headers.get("to", "")),
        cc=_people(headers.get("cc", "")),
        note="\n".join(lines[:index]).strip(),
    )


def _headers(lines: list[str], start: int, quoted: bool) -> tuple[dict[str, str], int]:
    """The block's header fields from `lines[start]` on (blank lines before them skipped),
    and the index of the first line after them."""
    index = start
    while index < len(lines) and index < start + 3 and not _plain(lines[index]):
        index += 1
    headers: dict[str, str] = {}
    while index < len(lines) and len(headers) < MAX_HEADER_LINES:
        line = lines[index]
        plain = _plain(line) if len(line) <= MAX_LINE else ""
        field = _field_of(plain)
        if field is None or (quoted and not _QUOTE.match(line)):
            break
        headers.setdefault(field, plain.partition(":")[2].strip())
        index += 1
    return headers, index


def _field_of(plain: str) -> str | None:
    match = _HEADER_LINE.fullmatch(plain)
    if match is None:
        return None
    return _FIELDS.get(" ".join(match.group(1).lower().split()))


def _plain(line: str) -> str:
    """A line without its quoting, html2text's escapes and emphasis, and outer spaces."""
    line = _QUOTE.sub("", line.strip(), count=1) if line.lstrip().startswith(">") else line
    line = _EMPHASIS.sub("", _ESCAPE.sub(r"\1", line))
    return " ".join(line.split())


def _unquoted(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith(">"):
        return stripped[2:] if stripped.startswith("> ") else stripped[1:]
    return line


def _addresses_written(value: str) -> str:
    """A From/To/Cc value with the clients' ways of writing an address made RFC 5322:
    `[a@b](mailto:a@b)` (html2text) as `a@b`, `Name [mailto:a@b]` (Outlook) as
    `Name <a@b>`."""
    value = _MAILTO_LINK.sub(lambda m: m.group(2), value)
    return _OLD_OUTLOOK_ADDRESS.sub(lambda m: f"<{m.group(1)}>", value)


def _person(value: str) -> Person:
    """(name, address) of a From value, or ("", "") when it names no usable address."""
    try:
        name, address = parseaddr(_addresses_written(value[:MAX_LINE]))
    except (RecursionError, ValueError):
        return "", ""
    return _named(name, address)


def _named(name: str, address: str) -> Person:
    address = address.strip().lower()
    if len(address) > MAX_EMAIL or not MAIL_ADDRESS.match(address):
        return "", ""
    name = " ".join(name.replace('"', " ").split())
    if name.lower() == address:  # Outlook's `To: a@b <a@b>`
        name = ""
    return (name or address.split("@")[0])[:MAX_NAME], address


def _people(value: str) -> tuple[Person, ...]:
    """The usable addresses of a To/Cc value, at most MAX_PEOPLE, each once."""
    try:
        pairs = getaddresses([_addresses_written(value[:MAX_LINE])])
    except (RecursionError, ValueError):
        return ()
    found: dict[str, Person] = {}
    for name, address in pairs[:MAX_PEOPLE]:
        person = _named(name, address)
        if person[1]:
            found.setdefault(person[1], person)
    return tuple(found.values())
