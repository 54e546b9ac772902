"""Mail from a blocked sender through the SMTP listener (issue 22 part 8): answered 250 like
any other, kept in the quarantine; no ticket, no acknowledgement, no outbox row."""

from __future__ import annotations

import smtplib
import uuid

import pytest

from tests.webhook import rows


def _send(port: int, sender: str) -> tuple[int, bytes]:
    raw = (
        f"From: {sender}\r\nTo: support@example.com\r\nSubject: Cheap pills\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@mail.example.org>\r\n\r\nBuy now.\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(sender)
        smtp.rcpt("support@example.com")
        return smtp.data(raw)


def _block(db, pattern: str) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO blocked_senders (pattern) VALUES (%s)", (pattern,))


@pytest.mark.parametrize(
    ("pattern", "sender"),
    [
        ("eve@spam.example", "Eve@Spam.Example"),
        ("@spam.example", "mallory@spam.example"),
        ("@spam.example", "mallory@relay.spam.example"),
    ],
)
def test_mail_from_a_blocked_sender_by_smtp_is_quarantined(listener, db, pattern, sender):
    _block(db, pattern)
    assert _send(listener, sender) == (250, b"2.0.0 Ok")
    assert rows(db, "SELECT reason FROM quarantine") == [{"reason": f"blocked sender ({pattern})"}]
    assert rows(db, "SELECT count(*) AS n FROM tickets") == [{"n": 0}]
    assert rows(db, "SELECT count(*) AS n FROM email_outbox") == [{"n": 0}]


def test_once_unblocked_smtp_mail_opens_a_ticket_again(listener, db):
    _block(db, "@spam.example")
    _send(listener, "eve@spam.example")
    with db.transaction() as conn:
        conn.execute("DELETE FROM blocked_senders")
    assert _send(listener, "eve@spam.example") == (250, b"2.0.0 Ok")
    assert rows(db, "SELECT requester_email FROM tickets") == [
        {"requester_email": "eve@spam.example"}
    ]
    assert rows(db, "SELECT kind::text FROM email_outbox") == [{"kind": "ACKNOWLEDGEMENT"}]
