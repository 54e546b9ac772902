"""Our own check of a message's sender, for the SMTP listener: DKIM, SPF, then DMARC.

- DKIM (RFC 6376): each DKIM-Signature (at most MAX_SIGNATURES) verified with dkimpy,
  its key looked up through our resolver; the domains (d=) of those that verify count.
- SPF (RFC 7208, spf.py): the connecting address against the envelope sender's domain
  (the HELO name's for a bounce). Not asked when the client is one of the company's own
  relays (INBOUND_SMTP_RELAYS): then the address is the relay's, not the sender's, and
  DKIM alone decides.
- DMARC (RFC 7489): the From domain's `_dmarc` policy (else its organizational domain's).
  No policy: none, as the providers report it. With one, an aligned pass of either (the
  same organizational domain, or the very domain where the policy says `adkim=s` /
  `aspf=s`) is pass, and neither is fail, whatever its `p=`: a domain that publishes
  DMARC has said how its mail is recognised, and `p=none` is only what it asks us to do
  about a failure. If DNS could not be asked at any step that might have given a pass,
  it is none: a DNS outage never makes a customer's mail look forged. So is a check
  whose DNS questions took more than CHECK_SECONDS in all: the client waits for our answer.

The organizational domain is the registrable domain of the Public Suffix List
(`publicsuffixlist`, which ships the list and updates with the package: no download at
run time), as RFC 7489 section 3.2 says; a "last two labels" rule would make every
`.co.uk` customer one organization. Several From headers or addresses are each judged:
fail if any fails, pass only if all pass.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dkim
from publicsuffixlist import PublicSuffixList

from supportdesk.mail.inbound.sender_auth.headers import from_domains
from supportdesk.mail.inbound.sender_auth.resolver import (
    DnsTemporaryError,
    Resolver,
    normalized,
)
from supportdesk.mail.inbound.sender_auth.spf import PASS as SPF_PASS
from supportdesk.mail.inbound.sender_auth.spf import TEMPERROR, SpfResult, check_spf
from supportdesk.mail.inbound.sender_auth.verdicts import FAIL, NONE, PASS

log = logging.getLogger("supportdesk.mail.inbound.sender_auth")

MAX_SIGNATURES = 5  # DKIM signatures verified on one message (each may cost a lookup)
CHECK_SECONDS = 10.0  # of DNS for one message's check (SPF alone may ask 10 + 10 x 10)
_URI = re.compile(r"[a-z][a-z0-9+.-]*:\S+")  # a reporting address, `mailto:d@example.org`

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # reads the bundled list once (about 50 ms)


def organizational_domain(domain: str) -> str:
    """The registrable domain (`mail.example.co.uk` -> `example.co.uk`); a name that is
    itself a public suffix, or under no known one (`intranet`), is its own."""
    domain = normalized(domain)
    return _public_suffixes().privatesuffix(domain) or domain


def aligned(domain: str, from_domain: str, strict: bool) -> bool:
    """RFC 7489 section 3.1: the same domain (strict), or the same organizational one."""
    if strict:
        return normalized(domain) == normalized(from_domain)
    return organizational_domain(domain) == organizational_domain(from_domain)


@dataclass(frozen=True)
class DmarcPolicy:
    domain: str  # where it was found: the From domain or its organizational domain
    strict_dkim: bool  # adkim=s
    strict_spf: bool  # aspf=s


def dmarc_policy(resolver: Resolver, from_domain: str) -> DmarcPolicy | None:
    """The From domain's DMARC policy (RFC 7489 section 6.6.3), or None when it has none
    (or two, which count as none). DnsTemporaryError when DNS could not be asked."""
    for domain in dict.fromkeys([normalized(from_domain), organizational_domain(from_domain)]):
        records = [r for r in resolver.lookup(f"_dmarc.{domain}", "TXT") if _is_dmarc(r)]
        if len(records) > 1:
            return None
        if records:
            return _policy(domain, records[0])
    return None


def _is_dmarc(record: str) -> bool:
    head = record.strip().split(";", 1)[0]
    return head.replace(" ", "") == "v=DMARC1"


def _policy(domain: str, record: str) -> DmarcPolicy | None:
    tags = {}
    for part in record.split(";"):
        key, equals, value = part.partition("=")
        if equals:
            tags.setdefault(key.strip().lower(), value.strip().lower())
    reports = any(_URI.match(uri.strip()) for uri in tags.get("rua", "").split(","))
    if tags.get("p") not in ("none", "quarantine", "reject") and not reports:
        return None  # section 6.6.3: no valid p= and nowhere to report: no DMARC here
    return DmarcPolicy(domain, tags.get("adkim") == "s", tags.get("aspf") == "s")


@dataclass(frozen=True)
class Evidence:
    """What the check found, for the log line: the verdict and why."""

    verdict: str
    from_domains: tuple[str, ...] = ()
    dkim_domains: tuple[str, ...] = ()
    spf: SpfResult | None = None
    reason: str = ""


class SenderCheck:
    """The SMTP listener's check; `relays` are the company's own servers relaying to it.
    One message's questions may take `seconds` of DNS in all (as `clock` counts): past
    that each is a temperror, so a slow DNS holds the client's answer for about that
    long (plus one question's own timeout), and gives none."""

    def __init__(
        self,
        resolver: Resolver,
        relays: Sequence[Network] = (),
        *,
        seconds: float = CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.resolver = resolver
        self.relays = tuple(relays)
        self.seconds = seconds
        self.clock = clock

    def verdict(self, raw: bytes, peer: str, mail_from: str, helo: str) -> str:
        """pass, fail or none for a message from client `peer` (its IP address), sent
        with `MAIL FROM:<mail_from>` after `HELO helo`. Never raises: a check that breaks
        on someone's message is logged and gives none."""
        try:
            evidence = self.evaluate(raw, peer, mail_from, helo)
        except Exception:  # third-party parsers on someone else's bytes: never lose mail
            log.exception("sender check failed: none")
            return NONE
        log.info(
            "sender %s for From %s: %s (DKIM %s; SPF %s)",
            evidence.verdict,
            ", ".join(evidence.from_domains) or "-",
            evidence.reason,
            ", ".join(evidence.dkim_domains) or "none",
            evidence.spf.result if evidence.spf else "not checked",
        )
        return evidence.verdict

    def evaluate(self, raw: bytes, peer: str, mail_from: str, helo: str) -> Evidence:
        domains = tuple(sorted(from_domains(raw)))
        if not domains:
            return Evidence(NONE, reason="no From domain")
        resolver = _Deadline(self.resolver, self.clock() + self.seconds, self.clock)
        signed, dkim_unsure = dkim_domains(resolver, raw)
        spf = None if self._relayed(peer) else check_spf(resolver, peer, mail_from, helo)
        unsure = dkim_unsure or (spf is not None and spf.result == TEMPERROR)
        verdicts = []
        for domain in domains:
            try:
                policy = dmarc_policy(resolver, domain)
            except DnsTemporaryError:
                return Evidence(NONE, domains, signed, spf, f"no DMARC answer for {domain}")
            verdicts.append(_domain_verdict(domain, policy, signed, spf, unsure))
        verdict = FAIL if FAIL in verdicts else PASS if set(verdicts) == {PASS} else NONE
        return Evidence(verdict, domains, signed, spf, "DMARC")

    def _relayed(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.relays)


def dkim_domains(resolver: Resolver, raw: bytes) -> tuple[tuple[str, ...], bool]:
    """The d= of each DKIM signature of `raw` that verifies, and whether a key could not
    be looked up (a signature that might have verified)."""
    try:
        message = dkim.DKIM(raw)
    except dkim.DKIMException:
        return (), False
    count = sum(1 for name, _ in message.headers if name.lower() == b"dkim-signature")
    passed: dict[str, None] = {}
    unsure = False
    for index in range(min(count, MAX_SIGNATURES)):
        keys = _KeyLookup(resolver)
        try:
            verified = message.verify(idx=index, dnsfunc=keys)
        except dkim.DKIMException:
            verified = False
        unsure = unsure or keys.unanswered
        if verified and message.domain:
            passed[normalized(message.domain.decode("ascii", "replace"))] = None
    return tuple(passed), unsure


def _domain_verdict(
    domain: str,
    policy: DmarcPolicy | None,
    signed: tuple[str, ...],
    spf: SpfResult | None,
    unsure: bool,
) -> str:
    if policy is None:
        return NONE
    if any(aligned(d, domain, policy.strict_dkim) for d in signed):
        return PASS
    if (
        spf is not None
        and spf.result == SPF_PASS
        and aligned(spf.domain, domain, policy.strict_spf)
    ):
        return PASS
    return NONE if unsure else FAIL


class _Deadline:
    """A resolver that answers until `ends` (by `clock`), then says temperror."""

    def __init__(self, resolver: Resolver, ends: float, clock: Callable[[], float]):
        self.resolver = resolver
        self.ends = ends
        self.clock = clock

    def lookup(self, name: str, rdtype: str) -> list[str]:
        if self.clock() >= self.ends:
            raise DnsTemporaryError(f"{rdtype} {name}: the check's time for DNS is spent")
        return self.resolver.lookup(name, rdtype)


class _KeyLookup:
    """dkimpy's `dnsfunc`: a DKIM key's TXT record through our resolver; remembers
    whether DNS failed (dkimpy reports that as a signature that did not verify)."""

    def __init__(self, resolver: Resolver):
        self.resolver = resolver
        self.unanswered = False

    def __call__(self, name: bytes, timeout: float = 5) -> bytes | None:
        try:
            records = self.resolver.lookup(name.decode("ascii"), "TXT")
        except UnicodeDecodeError:
            return None
        except DnsTemporaryError as ex:
            self.unanswered = True
            raise dkim.DnsTimeoutError(str(ex)) from ex
        return records[0].encode("utf-8") if records else None
