"""Sender authentication (DESIGN.md section 10): whether an inbound message's From domain
was authenticated by DMARC, recorded on the message as `sender_auth` = pass | fail | none.

Three judges, one per way in:
- mail fetched from a company mailbox: the provider's own Authentication-Results header,
  read with the mailbox's trusted authserv-ids (`results.verdict_from_headers`);
- the webhook: the provider's verdict, a `dmarc` field of the JSON form
  (`verdicts.DMARC_FIELD`), or, for a raw message, its Authentication-Results read with
  INBOUND_TRUSTED_AUTHSERV_IDS;
- the SMTP listener: our own DKIM, SPF and DMARC check (`check.SenderCheck`), every DNS
  question through one `resolver.Resolver` that tests replace.

A `fail` never threads into an existing ticket and never reopens one (service.py).
"""

from supportdesk.mail.inbound.sender_auth.results import (
    GOOGLE_AUTHSERV_IDS,
    MICROSOFT_AUTHSERV_IDS,
    default_trusted_ids,
    trusted_ids_for,
    verdict_from_headers,
)
from supportdesk.mail.inbound.sender_auth.verdicts import FAIL, NONE, PASS

__all__ = [
    "FAIL",
    "GOOGLE_AUTHSERV_IDS",
    "MICROSOFT_AUTHSERV_IDS",
    "NONE",
    "PASS",
    "default_trusted_ids",
    "trusted_ids_for",
    "verdict_from_headers",
]
