"""SASL XOAUTH2 verified for real: IMAP against Dovecot's oauth2 passdb and SMTP against an
aiosmtpd auth handler, both asking the tests' authorization server whether a token is
active and whose it is; the tokens come from AccessTokens, as the fetcher and the worker
get them."""

from __future__ import annotations

import smtplib

import pytest
from imapclient.exceptions import LoginError

from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.tokens import AccessTokens
from tests.oauthserver import (
    XOAuth2SmtpServer,
    connect_mailbox,
    insert_mailbox,
    mailbox_row,
)

# The XOAUTH2 SMTP server takes AUTH without TLS (tests only); aiosmtpd warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def imap_mailbox(db, dovecot, imap_user, box, oauth):
    """An OAuth mailbox on the run's Dovecot, connected (tokens stored) for `imap_user`."""
    with db.transaction() as conn:
        row = insert_mailbox(
            conn,
            address=imap_user,
            username=imap_user,
            imap_host=dovecot.host,
            imap_port=dovecot.ssl_port,
        )
    connect_mailbox(db, box, oauth, row["id"], imap_user)
    return mailbox_row(db, row["id"])


@pytest.fixture
def smtp_server(oauth):
    server = XOAuth2SmtpServer(oauth.introspection_url).start()
    yield server
    server.stop()


def test_imap_xoauth2_with_the_stored_token(imap_mailbox, dovecot, db, configured, box, oauth):
    tokens = AccessTokens(db, configured, box)
    login = MailboxLogin(box, access_token=tokens.current, ssl_context=dovecot.ssl_context)
    client = login.imap(imap_mailbox, timeout=5)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    client.logout()
    assert oauth.token_requests == []  # the stored token was good
    assert len(oauth.introspections) == 1  # Dovecot asked the server


def test_imap_xoauth2_after_a_refresh_ahead_of_expiry(
    imap_mailbox, dovecot, db, configured, box, oauth
):
    with db.transaction() as conn:
        conn.execute(
            "UPDATE mailboxes SET access_token_expires_at = now() + interval '1 minute' "
            "WHERE id = %s",
            (imap_mailbox["id"],),
        )
    tokens = AccessTokens(db, configured, box)
    login = MailboxLogin(box, access_token=tokens.current, ssl_context=dovecot.ssl_context)
    login.imap(mailbox_row(db, imap_mailbox["id"]), timeout=5).logout()
    assert [r["grant_type"] for r in oauth.token_requests] == ["refresh_token"]


@pytest.mark.parametrize("which", ["made up", "expired", "another user's"])
def test_imap_refuses_a_token_that_is_not_good(imap_mailbox, dovecot, box, oauth, which):
    token = {
        "made up": lambda: "not-a-token-anyone-issued",
        "expired": lambda: _expired(oauth, imap_mailbox["username"]),
        "another user's": lambda: oauth.issue("someone-else@example.com")["access_token"],
    }[which]()
    login = MailboxLogin(box, access_token=lambda row: token, ssl_context=dovecot.ssl_context)
    with pytest.raises(LoginError):
        login.imap(imap_mailbox, timeout=5)
    assert token in oauth.introspections  # refused by Dovecot's own check, not by us


def _expired(oauth, username: str) -> str:
    token = oauth.issue(username)["access_token"]
    oauth.expire_access_tokens()
    return token


def test_smtp_xoauth2_with_the_stored_token(db, configured, box, oauth, smtp_server):
    with db.transaction() as conn:
        row = insert_mailbox(
            conn, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="NONE"
        )
    connect_mailbox(db, box, oauth, row["id"], "support@acme.example")
    tokens = AccessTokens(db, configured, box)
    login = MailboxLogin(box, access_token=tokens.current, plain_text_allowed=True)
    smtp = login.smtp(mailbox_row(db, row["id"]), timeout=5)
    smtp.sendmail("support@acme.example", ["cleo@example.org"], b"Subject: hi\r\n\r\nHello\r\n")
    smtp.quit()
    assert smtp_server.logins == ["support@acme.example"]
    assert len(smtp_server.wait_for(1)) == 1


@pytest.mark.parametrize("which", ["made up", "expired", "another user's"])
def test_smtp_refuses_a_token_that_is_not_good(db, box, oauth, smtp_server, which):
    with db.transaction() as conn:
        row = insert_mailbox(
            conn, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="NONE"
        )
    token = {
        "made up": lambda: "not-a-token-anyone-issued",
        "expired": lambda: _expired(oauth, "support@acme.example"),
        "another user's": lambda: oauth.issue("someone-else@example.com")["access_token"],
    }[which]()
    login = MailboxLogin(box, access_token=lambda row: token, plain_text_allowed=True)
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        login.smtp(row, timeout=5)
    assert refused.value.smtp_code == 535
    assert smtp_server.logins == []
