"""dnspython's resolver as the desk's DNS clients use it (the sender checks, the webhook
targets): the system's configuration or the name servers given, made on first use.

dnspython is imported here, when a first question is asked, not when a process starts: it
was 0.16 s of the start of every `supportdesk` process, most of which never ask one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dns.resolver

log = logging.getLogger("supportdesk.dns")

Nameservers = list[tuple[str, int]]  # [(address, port)]; None: the system's configuration


def dns_resolver(nameservers: Nameservers | None, unconfigured: str) -> dns.resolver.Resolver:
    """A resolver on `nameservers`, or on the system's configuration; where the system has
    none (no /etc/resolv.conf), one that answers nothing, with a warning saying what that
    means (`unconfigured`)."""
    import dns.nameserver
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=nameservers is None)
    except dns.resolver.NoResolverConfiguration:
        log.warning("no DNS resolver configured: %s", unconfigured)
        resolver = dns.resolver.Resolver(configure=False)
    if nameservers is not None:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers
        ]
    return resolver
