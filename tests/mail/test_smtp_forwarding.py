"""Forwarding in through the SMTP listener, which checks the forwarder itself (SPF, DMARC):
a verified staff member's forward is the customer's ticket; an unverified one is not."""

from __future__ import annotations

import smtplib

import pytest

from tests.dnsrecords import RecordsResolver
from tests.mail.forwards import FIXTURES, NOTE, forward
from tests.webhook import rows

# example.com (the staff's domain) publishes DMARC, and SPF lists the listener's clients.
VERIFIED = {
    "_dmarc.example.com": ["v=DMARC1; p=reject"],
    "example.com": ["v=spf1 ip4:127.0.0.0/8 -all"],
}


def send(port: int, raw: bytes) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("mail.example.com")
        smtp.mail("bo@example.com")
        smtp.rcpt("support@example.com")
        code, _ = smtp.data(raw)
    return code


def tickets(db) -> list[dict]:
    return rows(
        db,
        "SELECT t.requester_email, t.subject, m.author::text, m.visibility::text, m.body, "
        "m.sender_auth::text FROM tickets t JOIN ticket_messages m ON m.ticket_id = t.id "
        "ORDER BY m.id",
    )


@pytest.mark.parametrize(
    "fixture",
    [f for f in FIXTURES if f.name in ("outlook-new", "attached-rfc822")],
    ids=lambda f: f.name,
)
def test_a_verified_staff_forward_by_smtp_is_the_customers_ticket(
    settings, db, start_listener, make_staff, fixture
):
    make_staff("SUB_ADMIN", name="Bo Agent", email="bo@example.com")
    port = start_listener(settings, RecordsResolver(VERIFIED))
    assert send(port, forward(fixture)) == 250
    first, note = tickets(db)
    assert (first["requester_email"], first["subject"]) == ("cleo@example.org", "The printer jams")
    assert (first["author"], first["visibility"], first["sender_auth"]) == (
        "CUSTOMER",
        "PUBLIC",
        "none",  # nothing vouched for Cleo: the verdict was the forwarder's
    )
    assert (note["author"], note["visibility"], note["body"]) == ("STAFF", "INTERNAL", NOTE)
    assert note["sender_auth"] == "pass"


def test_an_unverified_staff_forward_by_smtp_is_the_forwarders_ticket(
    settings, db, start_listener, make_staff
):
    make_staff("SUB_ADMIN", name="Bo Agent", email="bo@example.com")
    port = start_listener(settings)  # DNS knows nothing: the verdict is none
    assert send(port, forward(FIXTURES[0])) == 250
    [only] = tickets(db)
    assert (only["requester_email"], only["author"], only["sender_auth"]) == (
        "bo@example.com",
        "CUSTOMER",
        "none",
    )
