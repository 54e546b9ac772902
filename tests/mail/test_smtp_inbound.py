"""The SMTP listener: mail to the support domain becomes tickets; other domains are refused."""

from __future__ import annotations

import smtplib

import pytest

from supportdesk.core.clients import parse_networks
from supportdesk.dev.embedded import free_port
from tests.mail.corpus import CASES
from tests.mail.senders import SENDERS, Sender


def test_a_message_sent_to_the_listener_opens_a_ticket(listener, db):
    raw = next(c for c in CASES if c.name == "pdf-attachment").raw
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        refused = smtp.sendmail("accounts@client.example", ["support@example.com"], raw)
    assert refused == {}
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT t.channel::text, t.subject, a.filename FROM tickets t "
            "JOIN attachments a ON a.ticket_id = t.id"
        ).fetchall()
    assert rows == [("EMAIL", "Invoice attached", "invoice-2026-11.pdf")]


def test_the_answer_comes_after_the_commit_and_names_nothing(listener, db):
    """A bare 250: naming the ticket and the outcome let anyone map Message-IDs to ticket
    numbers and find out who is staff (issue 18, finding 10)."""
    raw = next(c for c in CASES if c.name == "new-plain-text").raw
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("dan@example.net")
        smtp.rcpt("support@example.com")
        code, reply = smtp.data(raw)
        with db.transaction() as conn:  # committed by the time the answer came
            [(pid, subject)] = conn.execute("SELECT pid, subject FROM tickets").fetchall()
    assert (code, reply) == (250, b"2.0.0 Ok")
    assert pid.encode() not in reply
    assert subject == "Cannot log in to the portal"


def test_mail_for_another_domain_is_refused_at_rcpt(listener, db):
    with (
        smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        smtp.sendmail("spam@example.net", ["victim@elsewhere.example"], b"Subject: x\r\n\r\nx")
    assert refused.value.recipients["victim@elsewhere.example"][0] == 550
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


@pytest.mark.parametrize("sender", SENDERS, ids=[s.name for s in SENDERS])
def test_a_malformed_sender_is_never_refused(listener, db, sender: Sender):
    """Issue 20: each kind of malformed sender is answered 250: a ticket for the address
    found in Reply-To, Sender, Return-Path (the envelope sender) or a lenient reading, or,
    with no address anywhere, a place in the quarantine."""
    message_id = f"<smtp.{sender.name}@mail.example.org>"
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(sender.envelope)
        smtp.rcpt("support@example.com")
        code, reply = smtp.data(sender.raw(message_id))
    assert (code, reply) == (250, b"2.0.0 Ok")
    with db.transaction() as conn:
        requesters = conn.execute("SELECT requester_email FROM tickets").fetchall()
        kept = conn.execute("SELECT email_message_id, raw FROM quarantine").fetchall()
    if sender.requester:
        assert (requesters, kept) == ([(sender.requester,)], [])
    else:
        assert requesters == []
        [(kept_id, raw)] = kept
        assert kept_id == message_id
        assert bytes(raw).startswith(b"Return-Path: <>\r\n")  # as delivered, whole
        assert bytes(raw).endswith(b"Please call me back about my order.\r\n")


def test_a_kept_email_sent_twice_is_kept_once(listener, db):
    raw = SENDERS[-1].raw("<twice@mail.example.org>")
    for _ in range(2):
        with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
            assert smtp.sendmail("", ["support@example.com"], raw) == {}
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)


def test_a_bounce_is_known_by_its_empty_envelope_sender_and_never_answered(listener, db):
    """A bounce arrives with `MAIL FROM:<>` and often no header that says so; the listener
    adds the envelope sender as Return-Path, as a final delivery does."""
    raw = (
        b"From: Mail Delivery System <mailer-daemon@mx.example.net>\r\n"
        b"To: support@example.com\r\nSubject: Undeliverable: your message\r\n"
        b"Message-ID: <bounce.1@mx.example.net>\r\n\r\n"
        b"Your message could not be delivered to bob@gone.example.\r\n"
    )
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        smtp.sendmail("", ["support@example.com"], raw)
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM email_outbox").fetchone() == (0,)


def test_a_message_with_files_waits_at_the_sender_while_s3_is_down(s3_settings, db, start_listener):
    """451, not 550: the sending server keeps the message and tries again later."""
    down = s3_settings.replace(s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    port = start_listener(down)
    raw = next(c for c in CASES if c.name == "pdf-attachment").raw
    with (
        smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        smtp.sendmail("accounts@client.example", ["support@example.com"], raw)
    assert refused.value.smtp_code == 451
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


# --- issue 18, finding 6: the email channel's limit per client ------------------------------


def _new_ticket(n: int) -> bytes:
    return f"""From: Victim {n} <victim+{n}@corp.example>\r
To: support@example.com\r
Subject: Your invoice {n}\r
Message-ID: <flood.{n}@evil.example>\r
\r
Pay here.\r
""".encode()


def _send(port: int, raw: bytes) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail("flood@evil.example")
        smtp.rcpt("support@example.com")
        code, _ = smtp.data(raw)
    return code


def _tickets(db) -> int:
    with db.transaction() as conn:
        return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]


def test_one_client_sending_too_many_is_told_to_try_later(settings, db, start_listener):
    """Every message of a flood opened a ticket, each acknowledged to someone: past its
    share the client gets a 451, so its server keeps the rest and retries later."""
    port = start_listener(settings.replace(inbound_smtp_per_client=3))
    codes = [_send(port, _new_ticket(n)) for n in range(5)]
    assert codes == [250, 250, 250, 451, 451]
    assert _tickets(db) == 3


def test_the_companys_relay_is_not_counted(settings, db, start_listener):
    relays, _ = parse_networks("127.0.0.0/8")
    port = start_listener(settings.replace(inbound_smtp_per_client=3, inbound_smtp_relays=relays))
    assert [_send(port, _new_ticket(n)) for n in range(5)] == [250] * 5
    assert _tickets(db) == 5
