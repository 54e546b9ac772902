"""The mailbox fetcher against a real Dovecot (tests/imapserver.py), in this process: mail
into tickets, mark seen or move, backfill, duplicates, a new UIDVALIDITY, a dropped IDLE,
a server that goes away, a refused login, and a mailbox waiting for reauthorization."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import webtest
from psycopg.rows import dict_row

from supportdesk.accounts.audit import SYSTEM
from supportdesk.core.redis_client import make_redis
from supportdesk.mail.inbound.fetcher import FetchTimings, MailboxFetcher
from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.mail.mailboxes.tokens import AccessTokens
from supportdesk.web.app import create_app
from supportdesk.web.services import build_services
from tests.webhook import SECRET, post_raw

FAST = FetchTimings(poll=0.3, timeout=3, retry_base=0.2, retry_max=0.8, idle_check=0.1)


def mail(n: int = 1, *, message_id: str | None = None, sender: str = "cleo@example.org") -> bytes:
    message = EmailMessage()
    message["From"] = f"Cleo <{sender}>"
    message["To"] = "support@example.com"
    message["Subject"] = f"Question number {n}"
    message["Message-ID"] = message_id or make_msgid(domain="example.org")
    message.set_content(f"Hello, this is question {n}.")
    return message.as_bytes()


def wait_until(condition, timeout: float = 15, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


@pytest.fixture
def services(settings, db, redis_client):
    return build_services(settings, db, make_redis(settings))


@pytest.fixture
def login(settings, dovecot) -> MailboxLogin:
    return MailboxLogin(
        SecretBox(settings), plain_text_allowed=True, ssl_context=dovecot.ssl_context
    )


@pytest.fixture
def make_mailbox(services, dovecot, imap_user):
    def make(**over):
        fields = {
            "address": "support@example.com",
            "imap_host": dovecot.host,
            "imap_port": dovecot.ssl_port,
            "imap_security": "SSL",
            "username": imap_user,
            "password": "secret",
        } | over
        return services.mailboxes.create(fields, SYSTEM)

    return make


@pytest.fixture
def fetch(db, services, login):
    """fetch(mailbox) -> a context manager running its fetcher in a thread."""

    @contextmanager
    def run(mailbox, timings: FetchTimings = FAST) -> Iterator[MailboxFetcher]:
        fetcher = MailboxFetcher(
            mailbox["id"], db, services.inbound, services.inbound_parser, login, timings=timings
        )
        thread = threading.Thread(target=fetcher.run, daemon=True)
        thread.start()
        try:
            yield fetcher
        finally:
            fetcher.stop.set()
            thread.join(15)
            assert not thread.is_alive(), "the fetcher did not stop"

    return run


def mailbox_row(db, mailbox_id: int) -> dict:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM mailboxes WHERE id = %s", (mailbox_id,)).fetchone()


def tickets(db) -> list[tuple]:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT t.subject, t.mailbox_id, m.email_message_id FROM tickets t "
            "JOIN ticket_messages m ON m.ticket_id = t.id ORDER BY t.id, m.id"
        ).fetchall()


def subjects(db) -> list[str]:
    return [row["subject"] for row in tickets(db)]


def connected(db, mailbox_id: int) -> bool:
    """The fetcher reached the mailbox: OK with a fetch on record. (The OAuth flow sets OK
    by itself, before any fetcher has seen the folder and where it starts.)"""
    row = mailbox_row(db, mailbox_id)
    return row["status"] == "OK" and row["last_fetch_at"] is not None


def test_new_mail_becomes_a_ticket_that_remembers_its_mailbox(
    db, dovecot, imap_user, make_mailbox, fetch
):
    dovecot.append(imap_user, mail(0))  # there before the first connection
    mailbox = make_mailbox()
    with fetch(mailbox):
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        uid = dovecot.append(imap_user, mail(1))
        wait_until(lambda: tickets(db), message="the ticket")
        wait_until(lambda: uid in dovecot.uids(imap_user, criteria="SEEN"), message="\\Seen")
    assert [(r["subject"], r["mailbox_id"]) for r in tickets(db)] == [
        ("Question number 1", mailbox["id"])
    ]
    row = mailbox_row(db, mailbox["id"])
    assert row["last_uid"] == uid
    assert (row["status"], row["last_error"]) == ("OK", None)
    assert None not in (row["last_fetch_at"], row["backfilled_at"])
    # Mail that was there before the mailbox was connected stays unread, where it was.
    assert dovecot.uids(imap_user, criteria="UNSEEN") == [uid - 1]


def test_imported_mail_is_moved_to_the_folder_made_for_it(
    db, dovecot, imap_user, make_mailbox, fetch
):
    mailbox = make_mailbox(processed="MOVE:Imported")
    with fetch(mailbox):
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        assert dovecot.folder_exists(imap_user, "Imported")
        dovecot.append(imap_user, mail(1))
        dovecot.append(imap_user, mail(2))
        wait_until(lambda: len(tickets(db)) == 2, message="two tickets")
        wait_until(lambda: not dovecot.uids(imap_user), message="INBOX emptied")
    assert len(dovecot.uids(imap_user, "Imported")) == 2


def test_backfill_imports_recent_mail_once(db, dovecot, imap_user, make_mailbox, fetch):
    for n in (1, 2, 3):
        dovecot.append(imap_user, mail(n))
    mailbox = make_mailbox(backfill_days=7)
    with fetch(mailbox):
        wait_until(lambda: len(tickets(db)) == 3, message="the backfill")
    assert sorted(subjects(db)) == [f"Question number {n}" for n in (1, 2, 3)]
    # Connected again (settings kept, position kept): nothing is imported twice.
    dovecot.append(imap_user, mail(4))
    with fetch(mailbox):
        wait_until(lambda: len(tickets(db)) == 4, message="the new message")
    assert sorted(subjects(db)) == [f"Question number {n}" for n in (1, 2, 3, 4)]


def test_the_same_message_twice_and_through_the_webhook_is_stored_once(
    db, settings, redis_client, dovecot, imap_user, make_mailbox, fetch
):
    raw = mail(1)
    api = webtest.TestApp(
        create_app(
            settings.replace(inbound_email_secret=SECRET), db=db, redis_client=make_redis(settings)
        )
    )
    mailbox = make_mailbox()
    with fetch(mailbox):
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        post_raw(api, raw)
        first = dovecot.append(imap_user, raw)
        second = dovecot.append(imap_user, raw)
        wait_until(lambda: mailbox_row(db, mailbox["id"])["last_uid"] == second, message="both")
    assert first != second
    assert len(tickets(db)) == 1
    assert dovecot.uids(imap_user, criteria="UNSEEN") == []


def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(
    db, dovecot, imap_user, make_mailbox, fetch
):
    mailbox = make_mailbox(processed="MARK_SEEN")
    with fetch(mailbox):
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        dovecot.append(imap_user, mail(1))
        wait_until(lambda: len(tickets(db)) == 1, message="the first ticket")
        before = mailbox_row(db, mailbox["id"])
        dovecot.reset_uidvalidity(imap_user)  # the server goes away and comes back
        dovecot.append(imap_user, mail(2))
        wait_until(lambda: len(tickets(db)) == 2, timeout=20, message="the second ticket")
        after = wait_until(
            lambda: (row := mailbox_row(db, mailbox["id"]))["status"] == "OK" and row,
            message="OK again",
        )
    assert after["uidvalidity"] != before["uidvalidity"]
    assert sorted(subjects(db)) == ["Question number 1", "Question number 2"]


def test_an_idle_dropped_by_the_server_is_resumed(db, dovecot, imap_user, make_mailbox, fetch):
    mailbox = make_mailbox()
    with fetch(mailbox) as fetcher:
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        time.sleep(0.3)  # in IDLE
        dovecot.kick(imap_user)
        dovecot.append(imap_user, mail(1))
        wait_until(lambda: tickets(db), message="the ticket after the drop")
        assert fetcher.connections >= 2


def test_a_server_that_goes_away_is_retried_with_backoff_then_ok_again(
    db, dovecot, imap_user, make_mailbox, fetch
):
    mailbox = make_mailbox()
    with fetch(mailbox) as fetcher:
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        dovecot.stop()
        try:
            row = wait_until(
                lambda: (r := mailbox_row(db, mailbox["id"]))["status"] == "ERROR" and r,
                message="ERROR",
            )
            attempts = fetcher.connections
            time.sleep(2.0)
            # Waits of 0.2, 0.4, 0.8, 0.8 s: a handful of attempts in 2 s, not a busy loop.
            assert fetcher.connections - attempts <= 5
        finally:
            dovecot.start()
        assert "refused the connection" in row["last_error"] or "closed" in row["last_error"]
        dovecot.append(imap_user, mail(1))
        wait_until(lambda: tickets(db), message="the ticket after the restart")
        wait_until(lambda: connected(db, mailbox["id"]), message="OK again")
    assert mailbox_row(db, mailbox["id"])["last_error"] is None


def test_a_refused_login_is_an_error_that_says_so(db, make_mailbox, fetch):
    mailbox = make_mailbox(password="wrong")
    with fetch(mailbox):
        row = wait_until(
            lambda: (r := mailbox_row(db, mailbox["id"]))["status"] == "ERROR" and r,
            message="ERROR",
        )
    assert "refused the login" in row["last_error"]
    assert "wrong" not in row["last_error"]


def test_a_mailbox_waiting_for_reauthorization_is_not_fetched(
    db, dovecot, imap_user, make_mailbox, fetch
):
    mailbox = make_mailbox()
    dovecot.append(imap_user, mail(1))
    with db.transaction() as conn:
        conn.execute(
            "UPDATE mailboxes SET status = 'REAUTHORIZE', backfill_days = 7 WHERE id = %s",
            (mailbox["id"],),
        )
    with fetch(mailbox) as fetcher:
        time.sleep(0.5)
        assert fetcher.connections == 0
    assert tickets(db) == []
    assert mailbox_row(db, mailbox["id"])["status"] == "REAUTHORIZE"


def test_a_server_that_never_answers_is_an_error_after_the_timeout(db, make_mailbox, fetch):
    """It accepts the connection and says nothing: each attempt gives up after the timeout,
    and the attempts are spaced out."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted: list[socket.socket] = []
    threading.Thread(
        target=lambda: [accepted.append(silent.accept()[0]) for _ in range(16)], daemon=True
    ).start()
    mailbox = make_mailbox(imap_port=silent.getsockname()[1])
    slow = FetchTimings(poll=0.3, timeout=0.5, retry_base=0.5, retry_max=1.0, idle_check=0.1)
    try:
        with fetch(mailbox, slow) as fetcher:
            row = wait_until(
                lambda: (r := mailbox_row(db, mailbox["id"]))["status"] == "ERROR" and r,
                message="ERROR",
            )
            time.sleep(2.0)
            # 0.5 s to give up, then waits of 0.5, 1, 1 s: a few attempts, no busy loop.
            assert fetcher.connections <= 4
    finally:
        silent.close()
        for connection in accepted:
            connection.close()
    assert "did not answer within 0.5 seconds" in row["last_error"]


def with_results(results: str, sender: str = "cleo@example.org") -> bytes:
    return f"Authentication-Results: {results}\r\n".encode() + mail(1, sender=sender)


@pytest.mark.parametrize(
    ("results", "verdict"),
    [
        ("mx.google.com; dkim=pass; dmarc=pass header.from=example.org", "pass"),
        ("mx.google.com; dmarc=fail (p=REJECT) header.from=example.org", "fail"),
        # Written by someone else than the mailbox's provider: not believed.
        ("evil.example; dmarc=pass header.from=example.org", "none"),
    ],
)
def test_the_mailbox_providers_verdict_is_kept_on_the_message(
    db, dovecot, imap_user, make_mailbox, fetch, results, verdict
):
    mailbox = make_mailbox(trusted_authserv_ids=["mx.google.com"])
    with fetch(mailbox):
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        dovecot.append(imap_user, with_results(results))
        wait_until(lambda: tickets(db), message="the ticket")
    with db.transaction() as conn:
        [(stored,)] = conn.execute("SELECT sender_auth::text FROM ticket_messages").fetchall()
    assert stored == verdict


def test_mail_with_no_usable_sender_is_kept_in_the_quarantine_with_its_mailbox(
    db, dovecot, imap_user, make_mailbox, fetch
):
    mailbox = make_mailbox()
    raw = b"From: !!!\r\nSubject: nobody\r\nMessage-ID: <nobody@example.org>\r\n\r\nHello\r\n"
    with fetch(mailbox):
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        uid = dovecot.append(imap_user, raw)
        wait_until(lambda: uid in dovecot.uids(imap_user, criteria="SEEN"), message="\\Seen")
    with db.transaction() as conn:
        kept = conn.execute("SELECT mailbox_id, subject FROM quarantine").fetchall()
    assert kept == [(mailbox["id"], "nobody")]
    assert tickets(db) == []


# --- OAuth 2.0 mailboxes: XOAUTH2 checked by Dovecot against the tests' own server ---------


@pytest.fixture
def oauth_fetch(db, settings, services, dovecot, imap_user, oauth):
    """(an OAuth mailbox connected for `imap_user`, a fetch(...) that logs in with the
    access tokens of the OAuth flow, refreshed ahead of expiry)."""
    from tests.oauthserver import connect_mailbox, insert_mailbox, oauth_settings

    configured = oauth_settings(settings, oauth)
    box = SecretBox(configured)
    with db.transaction() as conn:
        row = insert_mailbox(
            conn,
            address=imap_user,
            username=imap_user,
            imap_host=dovecot.host,
            imap_port=dovecot.ssl_port,
        )
    connect_mailbox(db, box, oauth, row["id"], imap_user)
    tokens = AccessTokens(db, configured, box)
    login = MailboxLogin(box, access_token=tokens.current, ssl_context=dovecot.ssl_context)

    @contextmanager
    def run() -> Iterator[tuple[MailboxFetcher, threading.Thread]]:
        fetcher = MailboxFetcher(
            row["id"], db, services.inbound, services.inbound_parser, login, timings=FAST
        )
        thread = threading.Thread(target=fetcher.run, daemon=True)
        thread.start()
        try:
            yield fetcher, thread
        finally:
            fetcher.stop.set()
            thread.join(15)

    return row, run, (box, configured)


def test_an_oauth_mailbox_is_fetched_and_a_refused_refresh_pauses_it_losing_nothing(
    db, dovecot, imap_user, oauth, oauth_fetch
):
    from tests.oauthserver import connect_mailbox

    row, run, (box, _) = oauth_fetch
    with run():
        wait_until(lambda: connected(db, row["id"]), message="connected with XOAUTH2")
        dovecot.append(imap_user, mail(1))
        wait_until(lambda: len(tickets(db)) == 1, message="the first ticket")
    assert tickets(db)[0]["mailbox_id"] == row["id"]

    oauth.revoke(imap_user)  # consent withdrawn: the next refresh is refused
    oauth.expire_access_tokens()
    with db.transaction() as conn:
        conn.execute(
            "UPDATE mailboxes SET access_token_expires_at = now() WHERE id = %s", (row["id"],)
        )
    dovecot.append(imap_user, mail(2))  # arrives while the mailbox cannot be fetched
    with run() as (fetcher, thread):
        thread.join(10)
        assert not thread.is_alive()  # paused: no retry loop
        assert fetcher.connections == 1
    assert mailbox_row(db, row["id"])["status"] == "REAUTHORIZE"
    assert len(tickets(db)) == 1

    oauth.revoked_users.discard(imap_user)  # an ADMIN connects it again
    connect_mailbox(db, box, oauth, row["id"], imap_user)
    with run():
        wait_until(lambda: len(tickets(db)) == 2, message="the mail that waited")
    assert sorted(subjects(db)) == ["Question number 1", "Question number 2"]


def test_mail_from_a_blocked_domain_is_quarantined_and_still_marked_seen(
    db, dovecot, imap_user, make_mailbox, fetch
):
    """Issue 22 part 8: the fetcher takes the inbound service's one path, blocks included:
    kept in the quarantine, no ticket, no acknowledgement; and it is still imported (seen),
    not fetched again and again."""
    with db.transaction() as conn:
        conn.execute("INSERT INTO blocked_senders (pattern) VALUES ('@spam.example')")
    mailbox = make_mailbox()
    with fetch(mailbox):
        wait_until(lambda: connected(db, mailbox["id"]), message="the first connection")
        uid = dovecot.append(imap_user, mail(1, sender="eve@relay.spam.example"))
        wait_until(lambda: uid in dovecot.uids(imap_user, criteria="SEEN"), message="\\Seen")
    with db.transaction() as conn:
        kept = conn.execute("SELECT reason FROM quarantine").fetchall()
        outbox = conn.execute("SELECT count(*) FROM email_outbox").fetchone()
    assert kept == [("blocked sender (@spam.example)",)]
    assert tickets(db) == []
    assert outbox == (0,)
