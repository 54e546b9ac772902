"""The IMAP server the mailbox tests rely on is real and does what they assume."""

from __future__ import annotations

from imapclient import IMAPClient


def test_dovecot_takes_mail_and_logs_in_over_tls_and_starttls(dovecot, imap_user) -> None:
    uid = dovecot.append(imap_user, b"From: a@b.example\r\nSubject: hi\r\n\r\nbody\r\n")
    assert dovecot.uids(imap_user) == [uid]
    with IMAPClient(dovecot.host, port=dovecot.ssl_port, ssl_context=dovecot.ssl_context()) as c:
        c.login(imap_user, "secret")
        assert c.select_folder("INBOX")[b"EXISTS"] == 1
        assert b"IDLE" in c.capabilities()
    with IMAPClient(dovecot.host, port=dovecot.port, ssl=False) as c:
        c.starttls(dovecot.ssl_context())
        c.login(imap_user, "secret")
