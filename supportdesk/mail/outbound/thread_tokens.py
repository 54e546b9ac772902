"""Signed ticket tokens in the addresses of our emails, so that replies find their ticket.

Every ticket email we send carries `<pid>.<signature>` twice: in its Message-ID
(`<sd.202611-00042.reply.3f9c….a1b2c3d4e5f6@our-domain>`) and as the plus-part of its
Reply-To (`support+202611-00042.a1b2c3d4e5f6@our-domain`). A reply names the first in
In-Reply-To/References and is sent to the second, so it threads even when the mail client
dropped the headers or the subject was rewritten, and without a database lookup. The
signature (an HMAC under SECRET_KEY) means a token cannot be made up for another ticket.

A token proves that the sender had one of our emails about the ticket, and which
audience that email was for. The customer's emails (acknowledgement, replies) carry
CUSTOMER tokens; the notices to staff carry STAFF tokens, signed for another purpose.
Only a STAFF token lets mail from a staff address write as staff: every customer holds
CUSTOMER tokens of their own ticket, and a From line is anyone's to write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from supportdesk.core.signing import same_secret, sign
from supportdesk.core.vocabulary import PID_PATTERN, Audience

_PURPOSES: dict[Audience, str] = {"CUSTOMER": "thread", "STAFF": "thread-staff"}
# A received email without a Message-ID is stored under one made from its bytes (so a
# retry is still recognised); such an id is ours alone and never named in mail we send.
MADE_UP_DOMAIN = "inbound.invalid"


def made_up_message_id(digest: str) -> str:
    return f"<no-id.{digest[:32]}@{MADE_UP_DOMAIN}>"


def is_made_up(message_id: str) -> bool:
    return message_id.endswith(f"@{MADE_UP_DOMAIN}>")


_PID = rf"(?P<pid>{PID_PATTERN})"
_SIG = r"(?P<sig>[0-9a-f]{12})"
# <sd.<pid>.<kind>.<random>.<sig>@domain>: the signature signs the pid at its start.
_IN_MESSAGE_ID = re.compile(rf"^<sd\.{_PID}\.[a-z]+\.[0-9a-f]+\.{_SIG}@", re.I)
_IN_ADDRESS = re.compile(rf"^[^+@\s]+\+{_PID}\.{_SIG}@", re.I)


@dataclass(frozen=True)
class Token:
    """A verified token: the ticket it names, and whom the email that carried it was for."""

    pid: str
    audience: Audience


class ThreadTokens:
    def __init__(self, secret_key: str):
        self.secret_key = secret_key

    def token(self, pid: str, audience: Audience) -> str:
        return f"{pid}.{self._signature(pid, audience)}"

    def _signature(self, pid: str, audience: Audience) -> str:
        return sign(self.secret_key, _PURPOSES[audience], pid)[:12]

    def message_id(self, pid: str, kind: str, unique: str, domain: str, audience: Audience) -> str:
        """`<sd.<pid>.<kind>.<unique hex>.<signature>@domain>`."""
        return f"<sd.{pid}.{kind}.{unique}.{self._signature(pid, audience)}@{domain}>"

    def plus_address(self, address: str, pid: str, audience: Audience) -> str:
        """`support@x` -> `support+<pid>.<sig>@x`."""
        local, _, domain = address.partition("@")
        return f"{local}+{self.token(pid, audience)}@{domain}"

    def in_message_id(self, message_id: str) -> Token | None:
        return self._verified(_IN_MESSAGE_ID.match(message_id))

    def in_address(self, address: str) -> Token | None:
        return self._verified(_IN_ADDRESS.match(address))

    def _verified(self, match: re.Match[str] | None) -> Token | None:
        if match is None:
            return None
        pid, candidate = match["pid"], match["sig"].lower()
        for audience in _PURPOSES:
            if same_secret(self._signature(pid, audience), candidate):
                return Token(pid, audience)
        return None
