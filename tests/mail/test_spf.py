"""The SPF evaluator (RFC 7208) over the tests' DNS."""

from __future__ import annotations

import pytest

from supportdesk.mail.inbound.sender_auth.spf import check_spf
from tests.dnsrecords import RecordsResolver

BASE = {
    "example.org": ["v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.mailer.example -all"],
    "_spf.mailer.example": ["v=spf1 ip4:198.51.100.7 ~all"],
    "soft.example": ["v=spf1 ip4:192.0.2.1 ~all"],
    "neutral.example": ["v=spf1 ?all"],
    "plain.example": ["some other text record"],
    "a.example": ["v=spf1 a a:mail.a.example/24 -all"],
    "A a.example": ["203.0.113.5"],
    "A mail.a.example": ["203.0.113.100"],
    "mx.example": ["v=spf1 mx -all"],
    "MX mx.example": ["mx1.mx.example", "mx2.mx.example"],
    "A mx2.mx.example": ["203.0.113.77"],
    "redirect.example": ["v=spf1 redirect=example.org"],
    "redirect-nowhere.example": ["v=spf1 redirect=nothing.example"],
    "exists.example": ["v=spf1 exists:%{ir}.%{l}._spf.exists.example -all"],
    "A 9.100.51.198.billing._spf.exists.example": ["127.0.0.2"],
    "two.example": ["v=spf1 -all", "v=spf1 +all"],
    "broken.example": ["v=spf1 ip4:not-an-address -all"],
    "unknown-term.example": ["v=spf1 frobnicate -all"],
    "modifiers.example": ["v=spf1 exp=explain.example unknown=x ip4:192.0.2.1 -all"],
    "ptr.example": ["v=spf1 ptr -all"],
    "timeout.example": ["v=spf1 include:slow.example -all"],
}


def loop(n: int) -> dict[str, list[str]]:
    """A chain of `n` includes, each costing a lookup."""
    records = {f"l{i}.example": [f"v=spf1 include:l{i + 1}.example -all"] for i in range(n)}
    records[f"l{n}.example"] = ["v=spf1 +all"]
    return records


def voids() -> dict[str, list[str]]:
    return {"void.example": ["v=spf1 a:n1.void.example a:n2.void.example a:n3.void.example +all"]}


@pytest.mark.parametrize(
    ("ip", "mail_from", "result"),
    [
        ("192.0.2.55", "cleo@example.org", "pass"),
        ("2001:db8::25", "cleo@example.org", "pass"),
        ("198.51.100.7", "cleo@example.org", "pass"),  # through the include
        ("203.0.113.9", "cleo@example.org", "fail"),
        ("203.0.113.9", "cleo@soft.example", "softfail"),
        ("192.0.2.1", "cleo@soft.example", "pass"),
        ("203.0.113.9", "cleo@neutral.example", "neutral"),
        ("203.0.113.9", "cleo@plain.example", "none"),
        ("203.0.113.9", "cleo@nothing.example", "none"),
        ("203.0.113.5", "x@a.example", "pass"),
        ("203.0.113.200", "x@a.example", "pass"),  # a:mail.a.example/24
        ("203.0.114.1", "x@a.example", "fail"),
        ("203.0.113.77", "x@mx.example", "pass"),
        ("203.0.113.78", "x@mx.example", "fail"),
        ("192.0.2.55", "x@redirect.example", "pass"),
        ("203.0.113.9", "x@redirect.example", "fail"),
        ("203.0.113.9", "x@redirect-nowhere.example", "permerror"),
        ("198.51.100.9", "billing@exists.example", "pass"),  # %{ir} and %{l}
        ("198.51.100.9", "sales@exists.example", "fail"),
        ("192.0.2.1", "x@two.example", "permerror"),
        ("192.0.2.1", "x@broken.example", "permerror"),
        ("192.0.2.1", "x@unknown-term.example", "permerror"),
        ("192.0.2.1", "x@modifiers.example", "pass"),
        ("192.0.2.1", "x@ptr.example", "fail"),  # ptr never matches
        ("192.0.2.1", "x@timeout.example", "temperror"),
        ("192.0.2.1", "x@l0.example", "pass"),  # ten includes: the limit
        ("192.0.2.1", "x@k0.example", "permerror"),  # eleven: past it
        ("192.0.2.1", "x@void.example", "permerror"),  # three lookups that found nothing
        ("not-an-ip", "cleo@example.org", "none"),
    ],
)
def test_spf_results(ip, mail_from, result):
    records = BASE | loop(10) | voids()
    records |= {
        k.replace("l", "k", 1): [r.replace("include:l", "include:k") for r in v]
        for k, v in loop(11).items()
    }
    resolver = RecordsResolver(records, failing=["slow.example"])
    assert check_spf(resolver, ip, mail_from, "mail.example.org").result == result


def test_a_bounce_is_checked_by_its_helo_name():
    resolver = RecordsResolver({"mail.example.org": ["v=spf1 ip4:192.0.2.1 -all"]})
    spf = check_spf(resolver, "192.0.2.1", "", "mail.example.org")
    assert (spf.result, spf.domain) == ("pass", "mail.example.org")
    assert check_spf(resolver, "192.0.2.2", "<>", "mail.example.org").result == "fail"


def test_a_dns_failure_is_a_temperror_not_an_exception():
    resolver = RecordsResolver(failing=["example.org"])
    assert check_spf(resolver, "192.0.2.1", "cleo@example.org", "h.example").result == "temperror"


def test_an_ipv6_client_is_matched_by_aaaa_records():
    resolver = RecordsResolver(
        {"v6.example": ["v=spf1 a -all"], "AAAA v6.example": ["2001:db8::1"]}
    )
    assert check_spf(resolver, "2001:db8::1", "x@v6.example", "h").result == "pass"
    assert check_spf(resolver, "2001:db8::2", "x@v6.example", "h").result == "fail"
    assert ("A", "v6.example") not in resolver.asked
