"""STARTTLS and login against a real SMTP server that requires both (as Mailtrap's sandbox
and company relays do), with a certificate from a throwaway CA that the worker trusts."""

from __future__ import annotations

import ssl

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from supportdesk.dev.embedded import free_port
from supportdesk.mail.outbound.sender import SessionFailure, SmtpSender, wire_bytes
from tests.mail.test_emails import TICKET, _composer, _row
from tests.mailserver import ScriptedHandler

USER, PASSWORD = "desk", "s3cret-relay-password"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def relay(ca):
    """An SMTP server on 127.0.0.1 that demands STARTTLS, then a login, before any mail."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    logins: list[tuple[bytes, bytes]] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode())
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    handler = ScriptedHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    yield port, handler, logins
    controller.stop()


def _client_context(ca) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _email() -> bytes:
    return wire_bytes(_row(_composer().acknowledgement(TICKET, None)), "x@example.com")


def test_starttls_and_login_then_the_email_is_delivered(ca, relay):
    port, handler, logins = relay
    sender = SmtpSender(
        "127.0.0.1",
        port,
        username=USER,
        password=PASSWORD,
        starttls=True,
        timeout=5,
        tls_context=_client_context(ca),
    )
    sender.send(_email(), "support@acme.example", "cleo@example.org")
    sender.close()
    assert logins == [(USER.encode(), PASSWORD.encode())]
    [received] = handler.received
    assert received.rcpt_tos == ["cleo@example.org"]
    assert received.header("Subject").startswith("[#202611-00042]")


def test_a_wrong_password_is_a_session_failure_not_the_messages(ca, relay):
    port, handler, _ = relay
    sender = SmtpSender(
        "127.0.0.1",
        port,
        username=USER,
        password="wrong",
        starttls=True,
        timeout=5,
        tls_context=_client_context(ca),
    )
    with pytest.raises(SessionFailure, match="login refused"):
        sender.send(_email(), "support@acme.example", "cleo@example.org")
    assert handler.received == []


def test_without_starttls_the_server_refuses_us_and_that_is_a_session_failure(relay):
    port, handler, _ = relay
    sender = SmtpSender("127.0.0.1", port, timeout=5)
    with pytest.raises(SessionFailure, match="530"):
        sender.send(_email(), "support@acme.example", "cleo@example.org")
    assert handler.received == []


def test_a_certificate_we_do_not_trust_is_refused(relay):
    port, handler, _ = relay
    sender = SmtpSender(
        "127.0.0.1", port, username=USER, password=PASSWORD, starttls=True, timeout=5
    )  # the system's CAs: the throwaway CA is not among them
    with pytest.raises(SessionFailure, match="CERTIFICATE_VERIFY_FAILED"):
        sender.send(_email(), "support@acme.example", "cleo@example.org")
    assert handler.received == []
