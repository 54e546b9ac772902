"""The SMTP listener checks each sender itself (DKIM, SPF, DMARC) and stores the verdict;
a reply that fails DMARC never joins, nor reopens, the customer's ticket."""

from __future__ import annotations

import smtplib

import pytest

from supportdesk.core.redis_client import make_redis
from supportdesk.mail.inbound.sender_auth.resolver import DnsResolver
from supportdesk.tickets.inputs import NewTicket, TicketChange
from supportdesk.web.services import build_services
from tests.dnsrecords import RecordsResolver, dkim_key_record, dkim_signed, key_name
from tests.dnsserver import DnsServer
from tests.webhook import rows

DMARC = {
    key_name("example.org"): [dkim_key_record()],
    "_dmarc.example.org": ["v=DMARC1; p=reject"],
    # The listener's clients are on 127.0.0.1: example.org's SPF lists another network.
    "example.org": ["v=spf1 ip4:192.0.2.0/24 -all"],
}


@pytest.fixture
def resolved(settings, db, make_staff):
    """Cleo's RESOLVED ticket and the Message-ID of our acknowledgement, which a reply names."""
    services = build_services(settings, db, make_redis(settings))
    admin = make_staff("ADMIN", email="ana@example.com")
    new = NewTicket("Cleo Customer", "cleo@example.org", "The printer jams", "Tray 2.", "NORMAL")
    ticket = services.tickets.create(new, channel="WEB")
    services.tickets.update(admin, ticket["pid"], TicketChange(status="RESOLVED"))
    [ack] = rows(db, "SELECT message_id FROM email_outbox WHERE ticket_id = %s", ticket["id"])
    return ticket, ack["message_id"]


def reply(ack_id: str, n: int = 1) -> bytes:
    return (
        f"From: Cleo Customer <cleo@example.org>\r\nTo: support@example.com\r\n"
        f"Subject: Re: The printer jams\r\nMessage-ID: <reply.{n}@example.org>\r\n"
        f"In-Reply-To: {ack_id}\r\nReferences: {ack_id}\r\n\r\nIt jams again.\r\n"
    ).encode()


def send(port: int, raw: bytes, mail_from: str = "cleo@example.org") -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("mail.example.org")
        smtp.mail(mail_from)
        smtp.rcpt("support@example.com")
        code, _ = smtp.data(raw)
    return code


def stored(db, n: int = 1) -> dict:
    [message] = rows(
        db,
        "SELECT m.sender_auth::text, t.pid, t.status::text, t.id AS ticket_id "
        "FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id "
        "WHERE m.email_message_id = %s",
        f"<reply.{n}@example.org>",
    )
    return message


def status(db, ticket_id: int) -> str:
    [row] = rows(db, "SELECT status::text FROM tickets WHERE id = %s", ticket_id)
    return row["status"]


def test_a_dkim_signed_reply_passes_threads_and_reopens(settings, db, start_listener, resolved):
    ticket, ack_id = resolved
    port = start_listener(settings, RecordsResolver(DMARC))
    assert send(port, dkim_signed(reply(ack_id), "example.org")) == 250
    message = stored(db)
    assert (message["sender_auth"], message["pid"]) == ("pass", ticket["pid"])
    assert status(db, ticket["id"]) == "OPEN"


def test_a_forged_reply_fails_and_opens_its_own_ticket(settings, db, start_listener, resolved):
    ticket, ack_id = resolved
    port = start_listener(settings, RecordsResolver(DMARC))
    assert send(port, reply(ack_id)) == 250  # accepted: mail is never refused for this
    message = stored(db)
    assert message["sender_auth"] == "fail"
    assert message["pid"] != ticket["pid"]
    assert status(db, ticket["id"]) == "RESOLVED"  # not reopened
    # Nor acknowledged: the owner of the address most likely did not write it.
    acks = rows(db, "SELECT id FROM email_outbox WHERE ticket_id = %s", message["ticket_id"])
    assert acks == []


def test_a_reply_whose_signature_was_broken_on_the_way_fails(
    settings, db, start_listener, resolved
):
    ticket, ack_id = resolved
    port = start_listener(settings, RecordsResolver(DMARC))
    raw = dkim_signed(reply(ack_id), "example.org").replace(b"jams again", b"is fixed, pay")
    assert send(port, raw) == 250
    assert stored(db)["sender_auth"] == "fail"
    assert status(db, ticket["id"]) == "RESOLVED"


def test_spf_for_the_connecting_address_passes_without_dkim(settings, db, start_listener, resolved):
    ticket, ack_id = resolved
    records = DMARC | {"example.org": ["v=spf1 ip4:127.0.0.0/8 -all"]}
    port = start_listener(settings, RecordsResolver(records))
    assert send(port, reply(ack_id)) == 250
    assert (stored(db)["sender_auth"], stored(db)["pid"]) == ("pass", ticket["pid"])


@pytest.mark.parametrize(
    ("spf", "verdict"),
    [
        ("v=spf1 ip4:127.0.0.1 -all", "pass"),
        ("v=spf1 ip4:192.0.2.1 -all", "fail"),
        ("v=spf1 ip4:192.0.2.1 ~all", "fail"),  # softfail: no pass, and DMARC is published
    ],
)
def test_spf_results_of_the_envelope_sender(settings, db, start_listener, resolved, spf, verdict):
    _, ack_id = resolved
    records = DMARC | {"example.org": [spf]}
    port = start_listener(settings, RecordsResolver(records))
    assert send(port, reply(ack_id)) == 250
    assert stored(db)["sender_auth"] == verdict


def test_a_domain_without_dmarc_is_none_and_threads(settings, db, start_listener, resolved):
    ticket, ack_id = resolved
    records = {"example.org": ["v=spf1 -all"]}  # SPF fails, but no DMARC policy
    port = start_listener(settings, RecordsResolver(records))
    assert send(port, reply(ack_id)) == 250
    message = stored(db)
    assert (message["sender_auth"], message["pid"]) == ("none", ticket["pid"])
    assert status(db, ticket["id"]) == "OPEN"


@pytest.mark.parametrize(
    "failing", ["_dmarc.example.org", "s1._domainkey.example.org", "example.org"]
)
def test_a_dns_outage_is_none_and_refuses_nothing(settings, db, start_listener, resolved, failing):
    ticket, ack_id = resolved
    port = start_listener(settings, RecordsResolver(DMARC, failing=[failing]))
    assert send(port, dkim_signed(reply(ack_id), "example.org")) == 250
    message = stored(db)
    if failing == "example.org":  # SPF could not be asked; the signature still passes
        assert message["sender_auth"] == "pass"
    else:
        assert message["sender_auth"] == "none"
    assert message["pid"] == ticket["pid"]


def test_a_new_message_records_its_verdict(settings, db, start_listener):
    port = start_listener(settings, RecordsResolver(DMARC))
    raw = reply("<nothing@example.com>").replace(b"Re: The printer jams", b"Toner")
    assert send(port, dkim_signed(raw, "example.org")) == 250
    assert stored(db)["sender_auth"] == "pass"


def test_the_production_resolver_end_to_end(settings, db, start_listener, resolved):
    """dnspython asking a DNS server of the test's own: the key's record is longer than
    one TXT string, as every 2048-bit key's is."""
    ticket, ack_id = resolved
    key = dkim_key_record()
    server = DnsServer(
        {
            (key_name("example.org"), "TXT"): [f'"{key[:200]}" "{key[200:]}"'],
            ("_dmarc.example.org", "TXT"): ['"v=DMARC1; p=reject"'],
            ("example.org", "TXT"): ['"v=spf1 -all"'],
        }
    )
    try:
        resolver = DnsResolver(timeout=5, nameservers=[("127.0.0.1", server.port)])
        port = start_listener(settings, resolver)
        assert send(port, dkim_signed(reply(ack_id), "example.org")) == 250
        assert send(port, reply(ack_id, n=2)) == 250
    finally:
        server.close()
    assert (stored(db)["sender_auth"], stored(db)["pid"]) == ("pass", ticket["pid"])
    assert stored(db, 2)["sender_auth"] == "fail"
