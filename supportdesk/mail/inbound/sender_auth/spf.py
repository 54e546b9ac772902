"""SPF (RFC 7208): may this IP address send mail for the envelope sender's domain?

A small evaluator over the one `Resolver` (resolver.py), because none of the maintained
libraries takes a resolver: pyspf looks DNS up through a module global (`spf.DNSLookup`)
that a test would have to patch and that every thread shares; checkdmarc checks a domain's
published records (it is a record linter, and pulls in a dozen packages) rather than
evaluating one connection. What it evaluates: the mechanisms `all`, `include`, `a`, `mx`,
`ip4`, `ip6`, `exists` (with their CIDR lengths) and `ptr` (which never matches here: RFC
7208 section 5.5 says not to use it, and it costs a lookup per address), the `redirect`
modifier (`exp` and unknown modifiers are ignored, as the RFC says), the macros of section 7,
and the limits of section 4.6.4: ten terms that ask DNS, two lookups that find nothing,
ten MX hosts. A DNS failure is `temperror`, never an exception.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from supportdesk.mail.inbound.sender_auth.resolver import (
    DnsTemporaryError,
    Resolver,
    normalized,
)

PASS, FAIL, SOFTFAIL, NEUTRAL = "pass", "fail", "softfail", "neutral"
NONE, PERMERROR, TEMPERROR = "none", "permerror", "temperror"
_QUALIFIERS = {"+": PASS, "-": FAIL, "~": SOFTFAIL, "?": NEUTRAL}

MAX_LOOKUPS = 10  # terms that ask DNS: include, a, mx, ptr, exists, redirect
MAX_VOID_LOOKUPS = 2  # of those, ones that found nothing
MAX_MX_HOSTS = 10
MAX_DOMAIN = 253

_MECHANISM = re.compile(
    r"(?P<qualifier>[-+~?]?)(?P<name>all|include|a|mx|ptr|ip4|ip6|exists)"
    r"(?P<rest>[:/].*)?",
    re.IGNORECASE,
)
_MODIFIER = re.compile(r"(?P<name>[a-z][a-z0-9_.-]*)=(?P<value>.*)", re.IGNORECASE)
# `:domain`, `/ip4-cidr` and `//ip6-cidr`, each optional (a and mx).
_DOMAIN_CIDR = re.compile(r"(?::(?P<domain>[^/]+))?(?:/(?P<v4>\d{1,2}))?(?://(?P<v6>\d{1,3}))?")
_MACRO = re.compile(
    r"%(?:\{(?P<letter>[slodiphcrtv])(?P<digits>\d*)(?P<reverse>r?)"
    r"(?P<delimiters>[.\-+,/_=]*)\}|(?P<escape>[%_-]))",
    re.IGNORECASE,
)


class _PermError(Exception):
    """The record cannot be evaluated (RFC 7208 permerror): a syntax error or a limit."""


@dataclass(frozen=True)
class SpfResult:
    result: str  # one of the RFC 7208 results above
    domain: str  # the domain whose policy was checked: MAIL FROM's, or HELO's for a bounce


def check_spf(resolver: Resolver, ip: str, mail_from: str, helo: str) -> SpfResult:
    """The SPF result for a client at `ip` sending as `mail_from` (the envelope sender;
    empty for a bounce, when the HELO name is checked instead, RFC 7208 section 2.4)."""
    sender = mail_from.strip().strip("<>")
    local, at, domain = sender.rpartition("@")
    if not at:
        domain, local = helo, "postmaster"
    domain = normalized(domain)
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return SpfResult(NONE, domain)
    if not _is_domain(domain):
        return SpfResult(NONE, domain)
    check = _Check(resolver, address, local or "postmaster", domain, normalized(helo))
    return SpfResult(check.check_host(domain), domain)


def _is_domain(name: str) -> bool:
    labels = name.split(".")
    return (
        0 < len(name) <= MAX_DOMAIN
        and len(labels) > 1
        and all(0 < len(label) <= 63 for label in labels)
    )


class _Check:
    """One evaluation: the client, the sender, and the lookups spent so far."""

    def __init__(
        self,
        resolver: Resolver,
        address: ipaddress.IPv4Address | ipaddress.IPv6Address,
        local: str,
        sender_domain: str,
        helo: str,
    ):
        self.resolver = resolver
        self.address = address
        self.local = local
        self.sender_domain = sender_domain
        self.helo = helo
        self.lookups = 0
        self.voids = 0

    def check_host(self, domain: str) -> str:
        """RFC 7208 section 4: the result of `domain`'s policy for this client."""
        try:
            record = self._record(domain)
            return NONE if record is None else self._evaluate(domain, record)
        except _PermError:
            return PERMERROR
        except DnsTemporaryError:
            return TEMPERROR

    def _record(self, domain: str) -> str | None:
        records = [
            r for r in self.resolver.lookup(domain, "TXT") if re.match(r"v=spf1( |$)", r, re.I)
        ]
        if len(records) > 1:
            raise _PermError("more than one SPF record")
        return records[0] if records else None

    def _evaluate(self, domain: str, record: str) -> str:
        redirect: str | None = None
        for term in record.split()[1:]:
            mechanism = _MECHANISM.fullmatch(term)
            if mechanism is None:
                modifier = _MODIFIER.fullmatch(term)
                if modifier is None:
                    raise _PermError(f"not a term: {term}")
                if modifier["name"].lower() == "redirect":
                    if redirect is not None:
                        raise _PermError("two redirects")
                    redirect = modifier["value"]
                continue
            name = mechanism["name"].lower()
            if self._matches(domain, name, mechanism["rest"] or ""):
                return _QUALIFIERS[mechanism["qualifier"] or "+"]
        if redirect is None:
            return NEUTRAL
        self._spend()
        result = self.check_host(self._target(redirect, domain))
        if result == NONE:
            raise _PermError("redirect to a domain without SPF")
        return result

    def _matches(self, domain: str, name: str, rest: str) -> bool:
        if name == "all":
            if rest:
                raise _PermError("all takes no argument")
            return True
        if name in ("ip4", "ip6"):
            return self._in_network(name, rest)
        self._spend()
        if name == "include":
            return self._include(self._target(_argument(rest), domain))
        if name == "exists":
            return bool(self._void_checked(self._target(_argument(rest), domain), "A"))
        if name == "ptr":
            return False  # deprecated (RFC 7208 5.5); never matched here
        parts = _DOMAIN_CIDR.fullmatch(rest)
        if parts is None:
            raise _PermError(f"not a valid {name}: {rest}")
        target = self._target(parts["domain"], domain) if parts["domain"] else domain
        prefix = int(parts["v4"] or 32) if self.address.version == 4 else int(parts["v6"] or 128)
        if name == "a":
            return self._host_matches(target, prefix, count_void=True)
        hosts = self._void_checked(target, "MX")
        if len(hosts) > MAX_MX_HOSTS:
            raise _PermError("more than ten MX hosts")
        return any(self._host_matches(host, prefix, count_void=False) for host in hosts)

    def _include(self, target: str) -> bool:
        result = self.check_host(target)
        if result == TEMPERROR:
            raise DnsTemporaryError(f"include:{target}")
        if result in (PERMERROR, NONE):
            raise _PermError(f"include:{target} gave {result}")
        return result == PASS

    def _host_matches(self, host: str, prefix: int, *, count_void: bool) -> bool:
        rdtype = "A" if self.address.version == 4 else "AAAA"
        found = self._void_checked(host, rdtype) if count_void else self._lookup(host, rdtype)
        for text in found:
            try:
                network = ipaddress.ip_network(f"{text}/{prefix}", strict=False)
            except ValueError:
                continue  # not an address: a broken record of theirs, no match
            if self.address in network:
                return True
        return False

    def _in_network(self, name: str, rest: str) -> bool:
        if not rest.startswith(":"):
            raise _PermError(f"{name} needs an address")
        try:
            network = ipaddress.ip_network(rest[1:], strict=False)
        except ValueError:
            raise _PermError(f"not a network: {rest[1:]}") from None
        if network.version != (4 if name == "ip4" else 6):
            raise _PermError(f"{name} with a network of the other version")
        return self.address.version == network.version and self.address in network

    def _spend(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError("more than ten DNS lookups")

    def _lookup(self, name: str, rdtype: str) -> list[str]:
        return self.resolver.lookup(name, rdtype) if _is_domain(name) else []

    def _void_checked(self, name: str, rdtype: str) -> list[str]:
        found = self._lookup(name, rdtype)
        if not found:
            self.voids += 1
            if self.voids > MAX_VOID_LOOKUPS:
                raise _PermError("more than two lookups found nothing")
        return found

    def _target(self, spec: str, domain: str) -> str:
        """A domain-spec with its macros expanded, cut to a DNS name's length from the
        left (RFC 7208 section 7.3)."""
        expanded = normalized(self._expand(spec, domain))
        while len(expanded) > MAX_DOMAIN and "." in expanded:
            expanded = expanded.split(".", 1)[1]
        if not expanded:
            raise _PermError("an empty domain")
        return expanded

    def _expand(self, spec: str, domain: str) -> str:
        out: list[str] = []
        position = 0
        for macro in _MACRO.finditer(spec):
            if "%" in spec[position : macro.start()]:
                raise _PermError(f"not a macro in {spec}")
            out.append(spec[position : macro.start()])
            position = macro.end()
            escape = macro["escape"]
            if escape:
                out.append({"%": "%", "_": " ", "-": "%20"}[escape])
                continue
            out.append(self._macro(macro, domain))
        if "%" in spec[position:]:
            raise _PermError(f"not a macro in {spec}")
        out.append(spec[position:])
        return "".join(out)

    def _macro(self, macro: re.Match[str], domain: str) -> str:
        letter = macro["letter"].lower()
        value = {
            "s": f"{self.local}@{self.sender_domain}",
            "l": self.local,
            "o": self.sender_domain,
            "d": domain,
            "i": _dotted(self.address),
            "p": "unknown",
            "v": "in-addr" if self.address.version == 4 else "ip6",
            "h": self.helo,
        }.get(letter)
        if value is None:  # c, r and t are for explanations only
            raise _PermError(f"%{{{letter}}} outside an explanation")
        parts = re.split("[" + re.escape(macro["delimiters"] or ".") + "]", value)
        if macro["reverse"]:
            parts.reverse()
        if macro["digits"]:
            keep = int(macro["digits"])
            if keep == 0:
                raise _PermError("a macro keeping no part")
            parts = parts[-keep:]
        return ".".join(parts)


def _argument(rest: str) -> str:
    if not rest.startswith(":") or len(rest) == 1:
        raise _PermError("a domain is needed")
    return rest[1:]


def _dotted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The `i` macro: an IPv4 address as it is, an IPv6 one as dotted nibbles."""
    if address.version == 4:
        return str(address)
    return ".".join(address.exploded.replace(":", ""))
