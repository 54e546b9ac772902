"""The verdict a mailbox provider wrote: its `Authentication-Results` header (RFC 8601).

Anyone can write an Authentication-Results header into a message they send, so only the
mailbox provider's own counts: the topmost header whose authserv-id is one this mailbox
trusts (`mailboxes.trusted_authserv_ids`, else the defaults below for Microsoft 365 and
Google). A provider adds its header above those already there, so what lies below its
own was written before it (by the sender, or a server on the way) and is never read, even
when it claims a trusted id. Its `dmarc=` result decides: pass -> pass, fail -> fail,
anything else (none, temperror, permerror, Microsoft's `bestguesspass` for a domain with
no DMARC policy) -> none. SPF and DKIM results without a DMARC one say nothing of the
From domain (a message may be DKIM-signed by any domain, and SPF judges the envelope
sender, which the reader never sees), so they give none. A `header.from` naming another
domain than the message's From judged another message, and one verdict cannot vouch for
a message with two From domains: none.

Microsoft 365 writes its header without an authserv-id (`Authentication-Results:
spf=pass ...; dmarc=pass action=none header.from=contoso.com`), which RFC 8601 does not
allow and `authres` refuses. The rule: such a header is read only when it is the topmost
Authentication-Results of the message and the mailbox trusts Microsoft's id
(MICROSOFT_AUTHSERV_IDS). Exchange Online writes it on delivery, after every other hop, so
on mail from outside the tenant it is the topmost; an id-less header lower down is the
sender's and never read. ARC-Authentication-Results (which Microsoft writes with its id)
was the other way, but Microsoft seals ARC only on some paths, so it would give none on
most mail. The risk left: mail sent inside the tenant carries no Microsoft header, so a
colleague's id-less header on top would be taken as Microsoft's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from email.message import Message
from typing import Any

import authres

from supportdesk.mail.inbound.sender_auth.headers import from_domains, header_values
from supportdesk.mail.inbound.sender_auth.resolver import normalized
from supportdesk.mail.inbound.sender_auth.verdicts import NONE, from_dmarc_result

log = logging.getLogger("supportdesk.mail.inbound.sender_auth")

# The authserv-ids of the providers' own headers. Google: `Authentication-Results:
# mx.google.com; dkim=pass ...`. Microsoft: `mx.microsoft.com 1;` where it names itself
# (ARC-Authentication-Results), and no id at all in its Authentication-Results (see above).
GOOGLE_AUTHSERV_IDS = ("mx.google.com",)
MICROSOFT_AUTHSERV_IDS = ("mx.microsoft.com",)
# The IMAP hosts that tell a mailbox's provider when it is not connected by OAuth.
GOOGLE_IMAP_HOSTS = ("imap.gmail.com", "imap.googlemail.com")
MICROSOFT_IMAP_HOSTS = ("outlook.office365.com", "outlook.office.com", "imap-mail.outlook.com")


def default_trusted_ids(oauth_provider: str | None, imap_host: str) -> tuple[str, ...]:
    """The authserv-ids a mailbox at this provider trusts when it names none itself."""
    host = normalized(imap_host)
    if oauth_provider == "MICROSOFT" or host in MICROSOFT_IMAP_HOSTS:
        return MICROSOFT_AUTHSERV_IDS
    if oauth_provider == "GOOGLE" or host in GOOGLE_IMAP_HOSTS:
        return GOOGLE_AUTHSERV_IDS
    return ()


def trusted_ids_for(mailbox: Mapping[str, Any]) -> tuple[str, ...]:
    """A `mailboxes` row's trusted authserv-ids: its own list, else its provider's."""
    own = tuple(mailbox.get("trusted_authserv_ids") or ())
    return own or default_trusted_ids(mailbox.get("oauth_provider"), mailbox["imap_host"])


def verdict_from_headers(message: Message | bytes, trusted_ids: Sequence[str]) -> str:
    """pass, fail or none from the topmost Authentication-Results whose authserv-id is
    in `trusted_ids` (the rules above); none when there is no such header."""
    trusted = {normalized(i) for i in trusted_ids}
    if not trusted:
        return NONE
    microsoft = bool(trusted & set(MICROSOFT_AUTHSERV_IDS))
    for position, value in enumerate(header_values(message, "Authentication-Results")):
        parsed = _parse(value)
        if parsed is None:
            continue
        authserv_id, results = parsed
        if authserv_id is None and not (microsoft and position == 0):
            continue
        if authserv_id is not None and normalized(authserv_id) not in trusted:
            continue
        return _dmarc_verdict(results, from_domains(message))
    return NONE


def _parse(value: str) -> tuple[str | None, list[Any]] | None:
    """(the authserv-id, or None for Microsoft's id-less form; the results), or None for
    a header that cannot be read."""
    named = "=" not in value.split(";", 1)[0]  # Microsoft's form starts `spf=pass`
    try:
        header = authres.AuthenticationResultsHeader.parse_value(
            value if named else "unnamed; " + value
        )
    except Exception:  # a third-party parser on someone else's header (also RecursionError)
        return None
    return (header.authserv_id if named else None), list(header.results)


def _dmarc_verdict(results: list[Any], domains: set[str]) -> str:
    dmarc = next((r for r in results if str(r.method).lower() == "dmarc"), None)
    if dmarc is None:
        return NONE
    judged = next(
        (p.value for p in dmarc.properties if (p.type, p.name) == ("header", "from")), None
    )
    judged_domain = normalized(str(judged or "").rpartition("@")[2])
    if len(domains) > 1 or (judged_domain and domains and judged_domain not in domains):
        # One verdict cannot vouch for two From domains, nor for another one than ours.
        log.info("Authentication-Results judged %s; the From: %s", judged, sorted(domains))
        return NONE
    return from_dmarc_result(str(dmarc.result))
