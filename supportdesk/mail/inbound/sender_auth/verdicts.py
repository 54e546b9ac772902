"""The verdict a message's sender gets, and the webhook's field that carries a provider's.

`pass`, `fail` or `none` (vocabulary.SENDER_AUTHS, the `sender_auth` enum): whether the
From domain was authenticated by DMARC (RFC 7489), whoever judged it. `none` is every
"could not tell": the domain publishes no DMARC policy, nothing judged the message, or DNS
could not be asked. Light to import: the parse's child processes read the webhook's field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supportdesk.core.fields import Field, Kind
from supportdesk.core.text import Problems
from supportdesk.core.vocabulary import SENDER_AUTHS

PASS, FAIL, NONE = SENDER_AUTHS

# DMARC's results (RFC 7489 section 11.2, RFC 8601's `dmarc=` method): pass and fail say
# something about the sender; none, temperror and permerror do not.
DMARC_RESULTS = ("pass", "fail", "none", "temperror", "permerror")


def from_dmarc_result(result: str) -> str:
    """A DMARC result (any case) as a verdict: pass, fail, else none."""
    result = result.strip().lower()
    return result if result in (PASS, FAIL) else NONE


def _dmarc_result(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> str:
    if isinstance(value, str) and value.strip().lower() in field.choices:
        return value.strip().lower()
    problems[field.name] = field.message
    return ""


DMARC_FIELD = Field(
    "dmarc",
    Kind({"type": "string"}, _dmarc_result, needs=("choices",)),
    f"Give the DMARC result as one of {', '.join(DMARC_RESULTS)}.",
    choices=DMARC_RESULTS,
    description=(
        "the provider's DMARC result for the From domain (RFC 7489; as Mailgun, SendGrid or "
        "Postmark report it): pass is stored as a verified sender, fail as an unverified "
        "one (it never threads into an existing ticket), anything else, or no field, as "
        "none. SPF or DKIM results alone are not taken: they do not say the From domain "
        "was aligned."
    ),
)
