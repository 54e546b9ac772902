"""The SMTP listener's way in, for the people copied on a ticket (DESIGN.md section 11):
the Cc of a new ticket's email is copied on it, a participant's answer threads, and a
stranger's answer to the same email does not."""

from __future__ import annotations

import smtplib

from tests.mail.corpus import msg


def _send(port: int, raw: bytes, envelope_from: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        assert smtp.sendmail(envelope_from, ["support@example.com"], raw) == {}


def _answer(sender: str, message_id: str, our_id: str) -> bytes:
    return msg(f"""
From: {sender}
To: support@example.com
Subject: Re: The scanner is offline
Message-ID: {message_id}
In-Reply-To: {our_id}
References: {our_id}

It is still offline.
""")


def test_a_participant_answers_by_smtp_and_a_stranger_cannot(listener, db):
    _send(
        listener,
        msg("""
From: Fay Client <fay@example.org>
To: support@example.com
Cc: Dana Doe <dana@example.org>
Subject: The scanner is offline
Message-ID: <fay.smtp@example.org>

Since this morning.
"""),
        "fay@example.org",
    )
    with db.transaction() as conn:
        [(ticket_id, ack_id)] = conn.execute(
            "SELECT ticket_id, message_id FROM email_outbox WHERE kind = 'ACKNOWLEDGEMENT'"
        ).fetchall()
        copied = conn.execute("SELECT email, name FROM ticket_participants").fetchall()
    assert copied == [("dana@example.org", "Dana Doe")]

    _send(
        listener,
        _answer("Dana Doe <dana@example.org>", "<dana.smtp@example.org>", ack_id),
        "dana@example.org",
    )
    _send(
        listener,
        _answer("Eve <eve@evil.example>", "<eve.smtp@evil.example>", ack_id),
        "eve@evil.example",
    )
    with db.transaction() as conn:
        messages = conn.execute(
            "SELECT ticket_id, author_email FROM ticket_messages ORDER BY id"
        ).fetchall()
    assert messages[:2] == [(ticket_id, "fay@example.org"), (ticket_id, "dana@example.org")]
    [(other_ticket, eve)] = messages[2:]
    assert (other_ticket != ticket_id, eve) == (True, "eve@evil.example")
