"""The SMTP listener's own check: DKIM (really signed), SPF, then DMARC alignment."""

from __future__ import annotations

import pytest

from supportdesk.core.clients import parse_networks
from supportdesk.mail.inbound.sender_auth.check import SenderCheck, organizational_domain
from tests.dnsrecords import RecordsResolver, dkim_key_record, dkim_signed, key_name

CLIENT = "192.0.2.10"


def mail(sender: str = "cleo@example.org", extra: str = "") -> bytes:
    return (
        f"From: Cleo <{sender}>\r\n{extra}To: support@example.com\r\n"
        "Subject: Re: the printer\r\nMessage-ID: <r1@example.org>\r\n\r\nIt jams again.\r\n"
    ).encode()


def world(**over: list[str]) -> dict[str, list[str]]:
    """example.org: a DKIM key, a DMARC policy (relaxed), SPF for 192.0.2.0/24."""
    return {
        key_name("example.org"): [dkim_key_record()],
        key_name("mail.example.org"): [dkim_key_record()],
        key_name("other.example"): [dkim_key_record()],
        "_dmarc.example.org": ["v=DMARC1; p=reject; rua=mailto:d@example.org"],
        "example.org": ["v=spf1 ip4:192.0.2.0/24 -all"],
        "bounces.example.org": ["v=spf1 ip4:192.0.2.0/24 -all"],
    } | {k.replace("__", "."): v for k, v in over.items()}


def verdict(raw: bytes, records, *, ip=CLIENT, mail_from="", helo="mail.example.org", failing=()):
    check = SenderCheck(RecordsResolver(records, failing=failing))
    return check.verdict(raw, ip, mail_from, helo)


def test_an_aligned_dkim_signature_passes():
    assert verdict(dkim_signed(mail(), "example.org"), world(), ip="203.0.113.1") == "pass"


def test_a_signature_of_a_subdomain_aligns_relaxed_but_not_strict():
    raw = dkim_signed(mail(), "mail.example.org")
    assert verdict(raw, world(), ip="203.0.113.1") == "pass"
    strict = world(_dmarc__example__org=["v=DMARC1; p=quarantine; adkim=s"])
    assert verdict(raw, strict, ip="203.0.113.1") == "fail"


def test_a_signature_of_another_domain_does_not_align():
    raw = dkim_signed(mail(), "other.example")
    assert verdict(raw, world(), ip="203.0.113.1") == "fail"


def test_an_unsigned_message_from_an_unlisted_address_fails():
    assert verdict(mail(), world(), ip="203.0.113.1", mail_from="cleo@example.org") == "fail"


def test_a_changed_body_breaks_the_signature():
    raw = dkim_signed(mail(), "example.org").replace(b"jams again", b"pay this invoice")
    assert verdict(raw, world(), ip="203.0.113.1") == "fail"


def test_a_signature_whose_key_is_not_published_does_not_pass():
    records = world()
    del records[key_name("example.org")]
    assert verdict(dkim_signed(mail(), "example.org"), records, ip="203.0.113.1") == "fail"


def test_aligned_spf_passes_without_dkim():
    assert verdict(mail(), world(), mail_from="cleo@example.org") == "pass"
    # The envelope sender of a subdomain aligns relaxed, not strict.
    assert verdict(mail(), world(), mail_from="b@bounces.example.org") == "pass"
    strict = world(_dmarc__example__org=["v=DMARC1; p=none; aspf=s"])
    assert verdict(mail(), strict, mail_from="b@bounces.example.org") == "fail"


def test_spf_of_another_domain_does_not_align():
    records = world(mailer__example=["v=spf1 ip4:192.0.2.0/24 -all"])
    assert verdict(mail(), records, mail_from="b@mailer.example") == "fail"


def test_a_domain_without_dmarc_is_none_even_when_forged():
    records = world()
    del records["_dmarc.example.org"]
    assert verdict(mail(), records, ip="203.0.113.1", mail_from="cleo@example.org") == "none"


def test_the_organizational_domains_policy_covers_a_subdomain():
    raw = mail(sender="cleo@eu.example.org")
    assert verdict(raw, world(), ip="203.0.113.1") == "fail"
    assert verdict(dkim_signed(raw, "example.org"), world(), ip="203.0.113.1") == "pass"


def test_p_none_still_fails_dmarc():
    records = world(_dmarc__example__org=["v=DMARC1; p=none"])
    assert verdict(mail(), records, ip="203.0.113.1") == "fail"


@pytest.mark.parametrize(
    "record",
    ["v=DMARC1; rua=", "v=spf1 -all", "v=DMARC1 p=reject", "v=DMARC1; p=bogus"],
)
def test_a_record_that_is_no_dmarc_policy_is_none(record):
    records = world(_dmarc__example__org=[record])
    assert verdict(mail(), records, ip="203.0.113.1") == "none"


def test_two_dmarc_records_are_none():
    records = world(_dmarc__example__org=["v=DMARC1; p=reject", "v=DMARC1; p=none"])
    assert verdict(mail(), records, ip="203.0.113.1") == "none"


@pytest.mark.parametrize(
    ("failing", "signed"),
    [
        pytest.param(["_dmarc.example.org"], True, id="the-dmarc-policy"),
        pytest.param(["s1._domainkey.example.org"], True, id="the-dkim-key"),
        pytest.param(["example.org"], False, id="the-spf-policy"),
    ],
)
def test_a_dns_failure_is_none_never_fail(failing, signed):
    raw = dkim_signed(mail(), "example.org") if signed else mail()
    assert verdict(raw, world(), ip="203.0.113.1", mail_from="x@example.org", failing=failing) == (
        "none"
    )


def test_a_dns_failure_does_not_hide_a_pass_found_otherwise():
    raw = dkim_signed(mail(), "example.org")
    assert verdict(raw, world(), mail_from="x@example.org", failing=["example.org"]) == "pass"


def test_a_second_from_header_of_another_domain_is_judged_too():
    """A DKIM pass for one From does not carry a second From that nothing vouches for."""
    records = world(_dmarc__bank__example=["v=DMARC1; p=reject"])
    raw = dkim_signed(mail(extra="From: Bank <alerts@bank.example>\r\n"), "example.org")
    assert verdict(raw, records, ip="203.0.113.1") == "fail"


def test_no_from_is_none():
    raw = b"To: support@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
    assert verdict(raw, world()) == "none"


def test_garbage_is_none_not_an_exception():
    assert verdict(b"\x00\xff" * 1000, world()) == "none"
    assert verdict(b"DKIM-Signature: v=1; a=\r\nFrom: a@example.org\r\n\r\nx", world()) in (
        "fail",
        "none",
    )


def test_the_companys_relay_is_not_asked_about_spf():
    """Behind the company's MX the client is the MX: its address says nothing of the sender."""
    relays, _ = parse_networks("192.0.2.0/24")
    resolver = RecordsResolver(world())
    check = SenderCheck(resolver, relays=relays)
    assert check.verdict(mail(), CLIENT, "cleo@example.org", "mx.example.com") == "fail"
    assert ("TXT", "example.org") not in resolver.asked
    signed = dkim_signed(mail(), "example.org")
    assert check.verdict(signed, CLIENT, "cleo@example.org", "mx.example.com") == "pass"


@pytest.mark.parametrize(
    ("domain", "organizational"),
    [
        ("mail.example.org", "example.org"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("victim.github.io", "victim.github.io"),
        ("intranet", "intranet"),
        ("Example.COM.", "example.com"),
    ],
)
def test_organizational_domains_follow_the_public_suffix_list(domain, organizational):
    assert organizational_domain(domain) == organizational


def test_a_policy_with_only_a_report_address_counts_as_p_none():
    """RFC 7489 6.6.3: no valid p= but a valid rua= is read as p=none."""
    records = world(_dmarc__example__org=["v=DMARC1; p=bogus; rua=mailto:d@example.org"])
    assert verdict(mail(), records, ip="203.0.113.1") == "fail"


def test_a_slow_dns_makes_the_check_give_up_with_none():
    """Each question takes 4 s by this clock; the check may spend 10: the DKIM key and the
    SPF policy are answered, then the DMARC policy is not, and no pass was found."""
    now = [0.0]

    def clock() -> float:
        now[0] += 4
        return now[0]

    resolver = RecordsResolver(world())
    check = SenderCheck(resolver, seconds=10, clock=clock)
    raw = dkim_signed(mail(), "other.example")
    assert check.verdict(raw, "203.0.113.1", "cleo@example.org", "h.example") == "none"
    assert ("TXT", "_dmarc.example.org") not in resolver.asked
    # With the time it needs, the same message fails.
    assert SenderCheck(resolver).verdict(raw, "203.0.113.1", "cleo@example.org", "h") == "fail"
