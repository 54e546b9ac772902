"""A ticket's participants (DESIGN.md section 11) as the SMTP server sees them: a PUBLIC
reply is one email To the requester and Cc the participants, one RCPT each; the
acknowledgement goes to the requester alone; one removed gets nothing more."""

from __future__ import annotations

from supportdesk.mail.inbound.parse import parse_mime
from supportdesk.tickets.inputs import NewMessage
from tests.mail.corpus import msg
from tests.worker.conftest import running


def test_a_reply_reaches_the_requester_and_the_participants_as_one_email(
    make_worker, smtp_server, services, make_staff
):
    received = services.inbound.receive(
        parse_mime(
            msg("""
From: Fay Client <fay@example.org>
To: Support <support@example.com>, Eli <eli@example.net>
Cc: Dana Doe <dana@example.org>
Subject: The scanner is offline
Message-ID: <fay.1@example.org>

Since this morning.
""")
        )
    )
    pid = received.ticket_pid
    admin = make_staff("ADMIN", name="Ana Admin")
    services.messages.post(admin, pid, NewMessage("We are on it."), channel="API")
    services.participants.remove(admin, pid, "eli@example.net")
    services.messages.post(admin, pid, NewMessage("Fixed."), channel="API")
    with running(make_worker()):
        ack, first, second = smtp_server.wait_for(3)

    assert ack.rcpt_tos == ["fay@example.org"]
    assert ack.message["Cc"] is None
    assert first.rcpt_tos == ["fay@example.org", "dana@example.org", "eli@example.net"]
    assert first.header("To") == "fay@example.org"
    assert first.header("Cc") == "dana@example.org, eli@example.net"
    assert "We are on it." in first.message.get_body(("plain",)).get_content()
    # Eli was removed: the next reply is not sent to him.
    assert second.rcpt_tos == ["fay@example.org", "dana@example.org"]
    assert second.header("Cc") == "dana@example.org"
    assert len(smtp_server.received) == 3
