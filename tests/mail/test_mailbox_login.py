"""Logging in to a mailbox's IMAP server with its stored password, over TLS that is verified."""

from __future__ import annotations

import ssl

import pytest

from supportdesk.mail.mailboxes.connect import MailboxLogin, PlainTextRefused, xoauth2
from supportdesk.mail.mailboxes.secrets import SecretBox


def _mailbox(dovecot, user, box, **over):
    row = {
        "imap_host": dovecot.host,
        "imap_port": dovecot.ssl_port,
        "imap_security": "SSL",
        "auth": "PASSWORD",
        "username": user,
        "secret_encrypted": box.seal("secret"),
    }
    return {**row, **over}


def test_password_login_over_ssl_and_starttls(dovecot, imap_user, base_settings) -> None:
    box = SecretBox(base_settings)
    login = MailboxLogin(box, ssl_context=dovecot.ssl_context)
    for mailbox in (
        _mailbox(dovecot, imap_user, box),
        _mailbox(dovecot, imap_user, box, imap_port=dovecot.port, imap_security="STARTTLS"),
    ):
        client = login.imap(mailbox, timeout=5)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
        client.logout()


def test_an_unknown_certificate_is_refused(dovecot, imap_user, base_settings) -> None:
    box = SecretBox(base_settings)
    with pytest.raises(ssl.SSLCertVerificationError):
        MailboxLogin(box).imap(_mailbox(dovecot, imap_user, box), timeout=5)


def test_plain_text_is_refused_unless_allowed(dovecot, imap_user, base_settings) -> None:
    box = SecretBox(base_settings)
    plain = _mailbox(dovecot, imap_user, box, imap_port=dovecot.port, imap_security="NONE")
    with pytest.raises(PlainTextRefused):
        MailboxLogin(box).imap(plain, timeout=5)
    MailboxLogin(box, plain_text_allowed=True).imap(plain, timeout=5).logout()


def test_the_xoauth2_string() -> None:
    assert xoauth2("a@b.example", "tok") == "user=a@b.example\x01auth=Bearer tok\x01\x01"
    with pytest.raises(ValueError, match="control character"):
        xoauth2("a@b.example\x01auth=x", "tok")
