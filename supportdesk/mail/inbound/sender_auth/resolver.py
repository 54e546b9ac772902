"""The one way the sender checks ask DNS anything: a `Resolver`, which tests replace.

DKIM keys, SPF policies, the A and MX records SPF names, and DMARC policies are all looked
up through `Resolver.lookup(name, rdtype)`, so a test gives one object holding the records
it means (tests/dnsrecords.py) and nothing reaches the network. The production one is on
dnspython (already there under dkimpy). What does not exist is an empty list; what could
not be asked (a timeout, SERVFAIL, no nameserver answering) is `DnsTemporaryError`, which
the checks turn into `none`: a DNS outage never refuses mail, nor marks it as failing.
"""

from __future__ import annotations

from typing import Protocol

from supportdesk.core.resolvers import DnsClient, DnsFailure, Nameservers

# The record types the checks ask for: TXT (DKIM, SPF, DMARC), A and AAAA (SPF's a, mx and
# exists), MX (SPF's mx). An MX answer is its exchange's host name, without preference.
RECORD_TYPES = ("TXT", "A", "AAAA", "MX")


class DnsTemporaryError(Exception):
    """The question could not be answered now (RFC 7208's and RFC 7489's temperror)."""


class Resolver(Protocol):
    def lookup(self, name: str, rdtype: str) -> list[str]:
        """The records of type `rdtype` at `name`, as text (a TXT record's strings joined),
        [] when there are none or the name does not exist; DnsTemporaryError when it
        could not be told."""
        ...


def normalized(name: str) -> str:
    """A DNS name as the checks compare and look it up: lower case, no trailing dot."""
    return name.strip().rstrip(".").lower()


class DnsResolver:
    """`Resolver` on dnspython: the system's resolver configuration, or the `nameservers`
    given (`[(address, port)]`). Each question may take `timeout` seconds in all (retries
    included): an SMTP client waits for our answer, and SPF may ask ten questions."""

    def __init__(self, timeout: float = 3.0, nameservers: Nameservers | None = None):
        self.dns = DnsClient(timeout, nameservers, "every sender is judged none")

    def lookup(self, name: str, rdtype: str) -> list[str]:
        if rdtype not in RECORD_TYPES:
            raise ValueError(f"not a record type the checks use: {rdtype}")
        try:
            answer = self.dns.records(normalized(name), rdtype)
        except DnsFailure as ex:
            raise DnsTemporaryError(f"{rdtype} {name}: {ex}") from ex
        return [_text(record, rdtype) for record in answer]


def _text(record: object, rdtype: str) -> str:
    if rdtype == "TXT":
        return b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
    if rdtype == "MX":
        return normalized(record.exchange.to_text())  # type: ignore[attr-defined]
    return record.to_text()  # type: ignore[attr-defined]
