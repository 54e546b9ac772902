"""Where an outgoing webhook may send (DESIGN.md section 13): no private, loopback,
link-local or other non-global address, unless WEBHOOK_ALLOW_PRIVATE (development, tests).

A URL is checked when it is registered (a clear 422) and again for each delivery, which
resolves the name itself, checks every address it gets and connects to a checked address
(webhooks/client.py): a name that resolved to a public address at registration and to
127.0.0.1 at sending time (DNS rebinding) reaches nothing. Names are resolved by DNS
(dnspython, with a bounded time), never by /etc/hosts: `localhost` is refused unless a DNS
server says otherwise, and then its address is what is judged.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from supportdesk.core.resolvers import DnsClient, DnsFailure, Nameservers
from supportdesk.core.vocabulary import MAX_URL

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Prefixes that carry an IPv4 address inside an IPv6 one: the embedded address is judged.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# 100.64.0.0/10 (carrier-grade NAT) is not global, and Python says so; named for the message.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(Exception):
    """This URL, or an address its name resolves to, may not be sent to; says why."""


class AddressResolver(Protocol):
    def addresses(self, host: str) -> list[str]:
        """Every A and AAAA address of `host`; TargetRefused when it has none or DNS fails."""
        ...


class DnsAddresses:
    """`AddressResolver` on dnspython: the system's resolver configuration, or the
    `nameservers` given (`[(address, port)]`), each question within `timeout` seconds."""

    def __init__(self, timeout: float = 5.0, nameservers: Nameservers | None = None):
        self.dns = DnsClient(timeout, nameservers, "no webhook host resolves")

    def addresses(self, host: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = self.dns.records(host, rdtype)
            except DnsFailure as ex:
                raise TargetRefused(
                    f"{host} could not be resolved ({type(ex.reason).__name__})"
                ) from ex
            found += [record.to_text() for record in answer]
        if not found:
            raise TargetRefused(f"{host} does not resolve to any address")
        return found


def refusal(address: Address) -> str | None:
    """Why this address may not be a webhook's target, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            inner = refusal(embedded)
            return None if inner is None else f"{inner} (inside the IPv6 address {address})"
    for test, name in (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in _SHARED if address.version == 4 else False, "shared (carrier-grade NAT)"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not a public address"),
    ):
        if test:
            return f"{address} is {name}"
    return None


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart: where to connect and what to say in Host and SNI."""

    scheme: str
    host: str  # a name, or an address without brackets
    port: int
    path: str  # with its query

    @property
    def host_header(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return shown if self.port == default else f"{shown}:{self.port}"

    @property
    def literal(self) -> Address | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_target(url: str) -> Target:
    """The URL's parts, or TargetRefused saying what is wrong with it."""
    if len(url) > MAX_URL:
        raise TargetRefused(f"The URL is longer than {MAX_URL} characters.")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 for c in url):
        raise TargetRefused("The URL must be ASCII without spaces (punycode for names).")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as ex:
        raise TargetRefused(f"The URL cannot be read: {ex}.") from ex
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("The URL must start with https:// or http://.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("The URL may not carry a user name or password; use the secret.")
    if parts.fragment:
        raise TargetRefused("The URL may not have a #fragment.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused("The URL has no host.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def checked_addresses(
    target: Target, resolver: AddressResolver, *, allow_private: bool
) -> list[Address]:
    """Every address `target` names (the literal, or what DNS says now), each checked:
    TargetRefused if any one is refused (a name with one private address among public
    ones could be made to use it)."""
    literal = target.literal
    found = [literal] if literal is not None else _parsed(resolver.addresses(target.host))
    if not allow_private:
        for address in found:
            reason = refusal(address)
            if reason is not None:
                what = "" if literal is not None else f"{target.host} resolves to "
                raise TargetRefused(
                    f"Webhooks may not target private, loopback or link-local addresses: "
                    f"{what}{reason}."
                )
    return found


def _parsed(texts: list[str]) -> list[Address]:
    return [ipaddress.ip_address(text.split("%", 1)[0]) for text in texts]
