"""Asking DNS, as the desk's DNS clients do (the sender checks, the webhook targets): on
dnspython, with the system's configuration or the name servers given.

dnspython is imported when a first question is asked, not when a process starts: it was
0.16 s of the start of every `supportdesk` process, most of which never ask one.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dns.resolver

log = logging.getLogger("supportdesk.dns")

Nameservers = list[tuple[str, int]]  # [(address, port)]; None: the system's configuration


class DnsFailure(Exception):
    """The question could not be answered now (a timeout, SERVFAIL, no server answering);
    `reason` is dnspython's error."""

    def __init__(self, reason: Exception):
        super().__init__(repr(reason))
        self.reason = reason


class DnsClient:
    """Questions of `timeout` seconds in all (retries included) to `nameservers`, or to the
    system's; where the system has none (no /etc/resolv.conf), every answer is empty, with a
    warning saying what that means (`unconfigured`)."""

    def __init__(self, timeout: float, nameservers: Nameservers | None, unconfigured: str):
        self.timeout = timeout
        self.nameservers = nameservers
        self.unconfigured = unconfigured

    @functools.cached_property
    def _resolver(self) -> dns.resolver.Resolver:
        import dns.nameserver
        import dns.resolver

        try:
            resolver = dns.resolver.Resolver(configure=self.nameservers is None)
        except dns.resolver.NoResolverConfiguration:
            log.warning("no DNS resolver configured: %s", self.unconfigured)
            resolver = dns.resolver.Resolver(configure=False)
        if self.nameservers is not None:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port) for address, port in self.nameservers
            ]
        return resolver

    def records(self, name: str, rdtype: str) -> list[Any]:
        """The `rdtype` records of the absolute `name` (dnspython's rdata); none where the
        name or the type does not exist; DnsFailure where no answer could be had."""
        import dns.exception
        import dns.resolver

        try:
            answer = self._resolver.resolve(
                name.rstrip(".") + ".", rdtype, lifetime=self.timeout, search=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.DNSException, OSError) as ex:
            raise DnsFailure(ex) from ex
        return list(answer)
