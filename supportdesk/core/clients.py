"""Who is on the other end: the client address that rate limits count against.

Behind a reverse proxy every request comes from the proxy's socket, so one limit would
cover every client. `TRUSTED_PROXIES` lists the proxies (addresses or CIDRs) whose
`X-Forwarded-For` is believed: the list is walked from the right, past the trusted hops,
and the first address that is not a trusted proxy is the client. Nothing else in the
header is believed: a client can write anything to the left of what its proxy appended.

IPv6 clients are counted by their /64: one host usually holds a whole /64, and could
otherwise step through its addresses to reset every limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str) -> tuple[tuple[IPNetwork, ...], list[str]]:
    """`10.0.0.1, 192.168.0.0/16, fd00::/8` -> (networks, the entries that are not one)."""
    networks, bad = [], []
    for entry in (part.strip() for part in text.replace(";", ",").split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
    return tuple(networks), bad


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443", as some proxies write
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.9:51000"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def bucket(address: IPAddress) -> str:
    """The key a limit counts: the address itself for IPv4, its /64 for IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ClientAddresses:
    """Resolves the client of a request from its socket peer and `X-Forwarded-For`."""

    def __init__(self, trusted_proxies: Iterable[IPNetwork] = ()):
        self.trusted = tuple(trusted_proxies)

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def is_trusted(self, peer: str) -> bool:
        """Whether the socket peer `peer` is one of the trusted hops."""
        address = _address(peer)
        return address is not None and self._is_trusted(address)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The rate-limit key of the client: see the module's docstring."""
        current = _address(peer or "")
        if current is None:
            return (peer or "unknown")[:64]  # a Unix socket or a test harness: as given
        if forwarded_for and self.trusted:
            hops = forwarded_for.split(",")[-32:]  # bounded: the header is the client's
            while self._is_trusted(current) and hops:
                previous = _address(hops.pop())
                if previous is None:
                    break  # garbage from further left: the last hop we could read is it
                current = previous
        return bucket(current)
