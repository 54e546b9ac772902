"""A ticket that came in on a company mailbox answers From that mailbox, through its own
SMTP server when it has one, else through the global one (real aiosmtpd servers, each
asserting what it got). A mailbox's server that refuses, or a mailbox to connect again,
holds back that mailbox's emails without using up their attempts, and nothing else."""

from __future__ import annotations

import time

import pytest
import redis

from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.tokens import AccessTokens
from supportdesk.mail.outbound.sender import SmtpSender
from supportdesk.mail.outbound.smtp_routes import SmtpRoutes
from supportdesk.tickets.inputs import NewMessage, NewTicket
from supportdesk.worker.worker import EmailWorker
from tests.oauthserver import (
    PasswordSmtpServer,
    XOAuth2SmtpServer,
    connect_mailbox,
    insert_mailbox,
)
from tests.worker.conftest import FAST, running, wait_until

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

MAILBOX = "support@acme.example"


@pytest.fixture
def mailbox_worker(db, redis_url, smtp_server, configured, box):
    """An EmailWorker whose global server is `smtp_server` and which sends a company
    mailbox's emails through that mailbox's own server, as `supportdesk worker` does."""
    clients: list[redis.Redis] = []

    def make() -> EmailWorker:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        clients.append(client)
        sender = SmtpSender("127.0.0.1", smtp_server.port, timeout=5)
        tokens = AccessTokens(db, configured, box)
        login = MailboxLogin(box, access_token=tokens.current, plain_text_allowed=True)
        return EmailWorker(
            db,
            client,
            sender,
            default_from="Support Desk <support@example.com>",
            bounce_address="support@example.com",
            timings=FAST,
            routes=SmtpRoutes(db, sender, login, timeout=5, hold=0.2),
        )

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def staff(make_staff):
    return make_staff("ADMIN", name="Ana Admin")


def _ticket(services, mailbox_id: int | None, email: str = "cleo@example.org"):
    new = NewTicket(
        name="Cleo Customer",
        email=email,
        subject="The printer jams",
        body="Tray 2 jams.",
        priority="NORMAL",
        mailbox_id=mailbox_id,
    )
    return services.tickets.create(new, channel="EMAIL")


def _reply(services, staff, ticket, body: str = "We are on it.") -> None:
    services.messages.post(staff, ticket["pid"], NewMessage(body=body), channel="API")


def _rows(db) -> list[dict]:
    with db.transaction() as conn:
        cur = conn.execute(
            "SELECT id, kind::text, status::text, attempts, last_error, from_address, "
            "reply_to, mailbox_id FROM email_outbox ORDER BY id"
        )
        names = [c.name for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_a_mailbox_ticket_answers_from_the_mailbox_through_the_global_server(
    db, services, staff, smtp_server, mailbox_worker
):
    """No SMTP server of its own: From (and Reply-To, and the envelope sender) the
    mailbox's address, with its display name, through the global server."""
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, auth="PASSWORD", address=MAILBOX, username=MAILBOX)
    ticket = _ticket(services, mailbox["id"])
    _reply(services, staff, ticket)
    _ticket(services, None, email="dora@example.org")
    with running(mailbox_worker()):
        received = smtp_server.wait_for(3)
    by_to = {(r.rcpt_tos[0], r.header("Auto-Submitted")): r for r in received}
    ack = by_to[("cleo@example.org", "auto-replied")]
    reply = by_to[("cleo@example.org", "")]
    for email in (ack, reply):
        assert email.header("From") == f"Acme Support <{MAILBOX}>"
        assert email.header("Reply-To") == MAILBOX
        assert email.mail_from == MAILBOX
        assert f"[#{ticket['pid']}]" in email.header("Subject")
    other = by_to[("dora@example.org", "auto-replied")]
    assert other.header("From") == "Support Desk <support@example.com>"
    assert other.header("Reply-To").startswith("support+")
    assert [r["mailbox_id"] for r in _rows(db)] == [mailbox["id"], mailbox["id"], None]


def test_a_mailbox_with_its_own_server_sends_through_it_with_its_password(
    db, services, staff, smtp_server, mailbox_worker, box
):
    own = PasswordSmtpServer(MAILBOX, "mailbox password").start()
    try:
        with db.transaction() as conn:
            mailbox = insert_mailbox(
                conn,
                auth="PASSWORD",
                address=MAILBOX,
                username=MAILBOX,
                secret_encrypted=box.seal("mailbox password"),
                smtp_host="127.0.0.1",
                smtp_port=own.port,
                smtp_security="NONE",
            )
        ticket = _ticket(services, mailbox["id"])
        _reply(services, staff, ticket)
        _ticket(services, None, email="dora@example.org")
        with running(mailbox_worker()):
            mine = own.wait_for(2)
            [global_one] = smtp_server.wait_for(1)
        assert {r.rcpt_tos[0] for r in mine} == {"cleo@example.org"}
        assert all(r.header("From") == f"Acme Support <{MAILBOX}>" for r in mine)
        assert global_one.rcpt_tos == ["dora@example.org"]
        assert own.logins == [MAILBOX]  # one session for both of its emails
        assert [r["status"] for r in _rows(db)] == ["SENT", "SENT", "SENT"]
    finally:
        own.stop()


def test_an_oauth_mailbox_sends_through_its_server_with_xoauth2(
    db, services, staff, smtp_server, mailbox_worker, box, oauth
):
    own = XOAuth2SmtpServer(oauth.introspection_url).start()
    try:
        with db.transaction() as conn:
            mailbox = insert_mailbox(
                conn, smtp_host="127.0.0.1", smtp_port=own.port, smtp_security="NONE"
            )
        connect_mailbox(db, box, oauth, mailbox["id"], MAILBOX)
        ticket = _ticket(services, mailbox["id"])
        with running(mailbox_worker()):
            [ack] = own.wait_for(1)
        assert ack.header("From") == f"Acme Support <{MAILBOX}>"
        assert ack.rcpt_tos == ["cleo@example.org"]
        assert own.logins == [MAILBOX]
        assert smtp_server.received == []
        assert ticket["pid"] in ack.header("Subject")
    finally:
        own.stop()


def test_a_mailbox_to_reauthorize_holds_its_emails_and_nothing_else(
    db, services, staff, smtp_server, mailbox_worker, box, oauth
):
    """REAUTHORIZE: its emails wait (FAILED, no attempt used, never DEAD) while the global
    server's go on; once connected again they are sent."""
    own = XOAuth2SmtpServer(oauth.introspection_url).start()
    try:
        with db.transaction() as conn:
            mailbox = insert_mailbox(
                conn,
                smtp_host="127.0.0.1",
                smtp_port=own.port,
                smtp_security="NONE",
                status="REAUTHORIZE",
                last_error="invalid_grant: revoked",
                secret_encrypted=box.seal("revoked-refresh-token"),
            )
        _ticket(services, mailbox["id"])
        _ticket(services, None, email="dora@example.org")
        with running(mailbox_worker()):
            [other] = smtp_server.wait_for(1)
            wait_until(lambda: _rows(db)[0]["last_error"] is not None, message="a failed try")
            waiting = _rows(db)[0]
            assert waiting["status"] in ("FAILED", "PENDING", "SENDING")
            assert waiting["attempts"] == 0
            assert "invalid_grant" in waiting["last_error"]
            assert own.received == []
            connect_mailbox(db, box, oauth, mailbox["id"], MAILBOX)  # connected again
            [ack] = own.wait_for(1, timeout=15)
        assert other.rcpt_tos == ["dora@example.org"]
        assert ack.rcpt_tos == ["cleo@example.org"]
        assert _rows(db)[0]["status"] == "SENT"
        assert _rows(db)[0]["attempts"] == 1
    finally:
        own.stop()


def test_a_refused_login_at_the_mailboxs_server_uses_no_attempt(
    db, services, staff, smtp_server, mailbox_worker, box
):
    own = PasswordSmtpServer(MAILBOX, "the right password").start()
    try:
        with db.transaction() as conn:
            mailbox = insert_mailbox(
                conn,
                auth="PASSWORD",
                address=MAILBOX,
                username=MAILBOX,
                secret_encrypted=box.seal("a stale password"),
                smtp_host="127.0.0.1",
                smtp_port=own.port,
                smtp_security="NONE",
            )
        _ticket(services, mailbox["id"])
        _ticket(services, None, email="dora@example.org")
        with running(mailbox_worker()):
            smtp_server.wait_for(1)
            # Several rounds of retries (FAST timings): still no attempt used, never DEAD.
            wait_until(lambda: _rows(db)[0]["last_error"] is not None, message="the refused login")
            time.sleep(1.0)
            row = _rows(db)[0]
        assert row["status"] in ("FAILED", "PENDING", "SENDING")
        assert row["attempts"] == 0
        assert "535" in row["last_error"]
        assert MAILBOX in row["last_error"]
        assert own.received == []
        assert _rows(db)[1]["status"] == "SENT"
    finally:
        own.stop()


def test_a_deactivated_mailbox_no_longer_answers_its_tickets(db, services, staff):
    """Its tickets answer From MAIL_FROM again (with the signed plus-address), and the
    outbox row names no mailbox, so the global server sends it."""
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, auth="PASSWORD", address=MAILBOX, username=MAILBOX)
    ticket = _ticket(services, mailbox["id"])
    with db.transaction() as conn:
        conn.execute("UPDATE mailboxes SET is_active = false WHERE id = %s", (mailbox["id"],))
    _reply(services, staff, ticket)
    ack, reply = _rows(db)
    assert (ack["mailbox_id"], ack["reply_to"]) == (mailbox["id"], MAILBOX)
    assert reply["mailbox_id"] is None
    assert reply["from_address"] == "Support Desk <support@example.com>"
    assert reply["reply_to"].startswith("support+")
