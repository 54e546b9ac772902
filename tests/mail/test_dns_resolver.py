"""The production resolver (dnspython) against a DNS server of the tests' own."""

from __future__ import annotations

import pytest

from supportdesk.mail.inbound.sender_auth.resolver import DnsResolver, DnsTemporaryError
from tests.dnsserver import DnsServer

LONG = "v=DKIM1; k=rsa; p=" + "A" * 300  # longer than one TXT string: sent as two


@pytest.fixture
def server():
    server = DnsServer(
        {
            ("example.org", "TXT"): ['"v=spf1 ip4:192.0.2.0/24 -all"', '"google-site=x"'],
            ("s1._domainkey.example.org", "TXT"): [f'"{LONG[:255]}" "{LONG[255:]}"'],
            ("example.org", "MX"): ["10 mx1.example.org.", "20 MX2.Example.org."],
            ("mx1.example.org", "A"): ["192.0.2.25"],
            ("mx1.example.org", "AAAA"): ["2001:db8::25"],
        },
        servfail=["broken.example"],
        silent=["slow.example"],
    )
    yield server
    server.close()


# The server (a thread of this process) answers at once, but a question may wait for it
# longer than that on a busy machine: 0.5 s timed out there under load. Only the questions
# meant to time out are asked with a short timeout.
ANSWERED = 5.0
TIMES_OUT = 0.5


@pytest.fixture
def resolver(server) -> DnsResolver:
    return DnsResolver(timeout=ANSWERED, nameservers=[("127.0.0.1", server.port)])


def test_records_come_back_as_text(resolver):
    assert sorted(resolver.lookup("Example.ORG.", "TXT")) == [
        "google-site=x",
        "v=spf1 ip4:192.0.2.0/24 -all",
    ]
    assert resolver.lookup("s1._domainkey.example.org", "TXT") == [LONG]  # strings joined
    assert sorted(resolver.lookup("example.org", "MX")) == ["mx1.example.org", "mx2.example.org"]
    assert resolver.lookup("mx1.example.org", "A") == ["192.0.2.25"]
    assert resolver.lookup("mx1.example.org", "AAAA") == ["2001:db8::25"]


def test_what_does_not_exist_is_empty(resolver):
    assert resolver.lookup("nothing.example", "TXT") == []  # NXDOMAIN
    assert resolver.lookup("mx1.example.org", "TXT") == []  # the name, not the type


@pytest.mark.parametrize("name", ["broken.example", "slow.example"])
def test_a_server_failure_or_timeout_is_a_temporary_error(server, name):
    resolver = DnsResolver(timeout=TIMES_OUT, nameservers=[("127.0.0.1", server.port)])
    with pytest.raises(DnsTemporaryError):
        resolver.lookup(name, "TXT")


def test_no_nameserver_answering_is_a_temporary_error():
    resolver = DnsResolver(timeout=TIMES_OUT, nameservers=[])
    with pytest.raises(DnsTemporaryError):
        resolver.lookup("example.org", "TXT")
