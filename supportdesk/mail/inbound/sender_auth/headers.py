"""Header fields of a message as the sender checks read them: every instance of a name,
top to bottom, unfolded and bounded (a hostile message may carry thousands, or one of a
megabyte, and these checks run outside the parse's sandbox), and the From domains."""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses

from supportdesk.mail.inbound.sender_auth.resolver import normalized

MAX_HEADER_SECTION = 256 * 1024  # bytes read for the headers of a raw message
MAX_INSTANCES = 50  # of one header name: real mail has a few Authentication-Results
MAX_VALUE = 8192  # characters of one value
_LINE_END = re.compile(rb"\r\n|\r|\n")


def header_values(message: Message | bytes, name: str) -> list[str]:
    """The values of every `name` header, topmost first, at most MAX_INSTANCES, each
    unfolded and cut to MAX_VALUE characters."""
    lowered = name.lower()
    if isinstance(message, bytes):
        pairs = _raw_pairs(message)
    else:
        pairs = ((key, str(value)) for key, value in message.raw_items())
    values: list[str] = []
    for key, value in pairs:
        if key.strip().lower() == lowered:
            values.append(" ".join(value[:MAX_VALUE].split()))
            if len(values) == MAX_INSTANCES:
                break
    return values


def _raw_pairs(raw: bytes) -> list[tuple[str, str]]:
    """(name, value) of each header of an RFC 5322 message, in one linear pass."""
    pairs: list[tuple[str, list[bytes]]] = []
    for line in _LINE_END.split(raw[:MAX_HEADER_SECTION]):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            if pairs and sum(map(len, pairs[-1][1])) < MAX_VALUE:
                pairs[-1][1].append(line)
            continue
        key, colon, value = line.partition(b":")
        if colon:
            pairs.append((key.decode("ascii", "replace"), [value]))
    return [(key, b" ".join(lines).decode("utf-8", "replace")) for key, lines in pairs]


def from_domains(message: Message | bytes) -> set[str]:
    """The domains of the From header's addresses (RFC 5322.From, what DMARC judges),
    every From header read: a message may try a second one to slip past the check."""
    domains: set[str] = set()
    for _, address in getaddresses(header_values(message, "From")):
        local, at, domain = address.rpartition("@")
        if at and local and domain.strip():
            domains.add(normalized(domain))
    return domains
