"""Mailbox fetchers in real `supportdesk worker` processes against a real Dovecot: one
fetcher per mailbox across workers, a lost worker's mailbox taken over, and a worker killed
in the middle of an import losing and doubling nothing."""

from __future__ import annotations

import signal
import threading
import time

import psycopg
import pytest
from psycopg.rows import dict_row

from supportdesk.accounts.audit import SYSTEM
from supportdesk.core.redis_client import make_redis
from supportdesk.mail.inbound.fetcher import FetchTimings, MailboxFetcher
from supportdesk.mail.inbound.fetchers import LOCK_NAMESPACE, MailboxFetchers
from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.web.services import build_services
from tests.mail.test_fetcher import mail, wait_until


@pytest.fixture
def start_worker(worker_process, dovecot):
    def start(name: str):
        return worker_process(
            name,
            SSL_CERT_FILE=str(dovecot.cert_file),  # trust the test server's certificate
            IMAP_POLL_SECONDS="0.5",
            IMAP_RETRY_MAX_SECONDS="1",
            IMAP_TIMEOUT_SECONDS="5",
        )

    return start


@pytest.fixture
def mailbox(settings, db, redis_client, dovecot, imap_user):
    services = build_services(settings, db, make_redis(settings))

    def make(**over):
        return services.mailboxes.create(
            {
                "address": "support@example.com",
                "imap_host": dovecot.host,
                "imap_port": dovecot.ssl_port,
                "username": imap_user,
                "password": "secret",
            }
            | over,
            SYSTEM,
        )

    return make


def query(db, sql: str, *args) -> list[dict]:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def imported(db) -> list[str]:
    rows = query(db, "SELECT email_message_id FROM ticket_messages ORDER BY id")
    return [row["email_message_id"] for row in rows]


def lock_holders(db, mailbox_id: int) -> list[int]:
    rows = query(
        db,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = %s AND objid = %s "  # advisory locks are per database: this run's
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        LOCK_NAMESPACE,
        mailbox_id,
    )
    return [row["pid"] for row in rows]


def status(db, mailbox_id: int) -> str:
    return query(db, "SELECT status::text FROM mailboxes WHERE id = %s", mailbox_id)[0]["status"]


def test_two_workers_fetch_a_mailbox_once_and_one_takes_over_from_the_other(
    db, dovecot, imap_user, mailbox, start_worker
):
    box = mailbox()
    first, second = start_worker("first"), start_worker("second")
    wait_until(lambda: status(db, box["id"]) == "OK", timeout=30, message="connected")
    wait_until(lambda: len(lock_holders(db, box["id"])) == 1, message="one lock holder")
    time.sleep(1.5)  # both have scanned more than once
    assert len(lock_holders(db, box["id"])) == 1
    sent = []
    for n in range(20):
        raw = mail(n)
        sent.append(raw)
        dovecot.append(imap_user, raw)
    wait_until(lambda: len(imported(db)) >= 20, timeout=30, message="20 messages")
    time.sleep(1.0)
    assert len(imported(db)) == 20
    assert len(set(imported(db))) == 20

    # The fetching worker dies; the other takes the mailbox over within a scan.
    holder = lock_holders(db, box["id"])
    fetching = first if _fetches(first, box["id"]) else second
    fetching.send_signal(signal.SIGKILL)
    fetching.wait(10)
    wait_until(
        lambda: lock_holders(db, box["id"]) not in ([], holder),
        timeout=20,
        message="the lock taken over",
    )
    dovecot.append(imap_user, mail(99))
    wait_until(lambda: len(imported(db)) == 21, timeout=30, message="mail after the takeover")


def _fetches(process, mailbox_id: int) -> bool:
    return f"mailbox {mailbox_id}: fetching here" in process.log_path.read_text()


def test_a_worker_killed_mid_import_leaves_every_message_stored_exactly_once(
    db, dovecot, imap_user, mailbox, start_worker
):
    total = 80
    for n in range(total):
        dovecot.append(imap_user, mail(n))
    box = mailbox(backfill_days=1)
    worker = start_worker("killed")
    wait_until(lambda: len(imported(db)) >= 10, timeout=60, message="the import under way")
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    halfway = len(imported(db))
    assert halfway < total, "the import finished before the kill: make it longer"
    start_worker("again")
    wait_until(lambda: len(imported(db)) >= total, timeout=90, message="every message")
    time.sleep(1.0)
    assert len(imported(db)) == total
    assert len(set(imported(db))) == total
    assert status(db, box["id"]) == "OK"


def test_fetching_stops_with_the_lock_connection_and_for_reauthorization(
    settings, db, redis_client, dovecot, mailbox, database_url
):
    """In this process: a lost lock connection stops the fetcher (its lock went with it),
    and the next scan takes the lock again; REAUTHORIZE stops it and lets the lock go."""
    services = build_services(settings, db, make_redis(settings))
    login = MailboxLogin(SecretBox(settings), ssl_context=dovecot.ssl_context)

    def make_fetcher(mailbox_id, stop):
        return MailboxFetcher(
            mailbox_id, db, services.inbound, services.inbound_parser, login, stop=stop,
            timings=FetchTimings(poll=0.3, timeout=3, retry_base=0.2, retry_max=0.5,
                                 idle_check=0.1),
        )  # fmt: skip

    box = mailbox()
    fetchers = MailboxFetchers(db, settings.direct_database_url, make_fetcher, rescan=0.2)
    thread = threading.Thread(target=fetchers.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: status(db, box["id"]) == "OK", message="connected")
        first = fetchers.running[box["id"]].fetcher
        [holder] = lock_holders(db, box["id"])
        with psycopg.connect(database_url, autocommit=True) as owner:
            owner.execute("SELECT pg_terminate_backend(%s)", (holder,))
        wait_until(first.stop.is_set, message="the fetcher stopped")
        wait_until(
            lambda: lock_holders(db, box["id"]) not in ([], [holder]), message="locked again"
        )
        second = fetchers.running[box["id"]].fetcher
        assert second is not first

        # A refreshed OAuth token (the OAuth flow touches updated_at) is no reason to
        # reconnect; an edit of what the fetcher works by is.
        with db.transaction() as conn:
            conn.execute(
                "UPDATE mailboxes SET access_token_encrypted = 'x', updated_at = now() "
                "WHERE id = %s",
                (box["id"],),
            )
        time.sleep(0.8)
        assert fetchers.running[box["id"]].fetcher is second
        with db.transaction() as conn:
            conn.execute("UPDATE mailboxes SET processed = 'MOVE:Done' WHERE id = %s", (box["id"],))
        wait_until(second.stop.is_set, message="the edited mailbox's fetcher stopped")
        wait_until(
            lambda: (
                box["id"] in fetchers.running and fetchers.running[box["id"]].fetcher is not second
            ),
            message="a fetcher with the new settings",
        )

        with db.transaction() as conn:
            conn.execute("UPDATE mailboxes SET status = 'REAUTHORIZE' WHERE id = %s", (box["id"],))
        wait_until(lambda: not lock_holders(db, box["id"]), message="the lock let go")
        assert box["id"] not in fetchers.running
        with db.transaction() as conn:  # connected again through the OAuth flow
            conn.execute("UPDATE mailboxes SET status = 'OK' WHERE id = %s", (box["id"],))
        wait_until(lambda: box["id"] in fetchers.running, message="fetching again")
    finally:
        fetchers.stop()
        thread.join(15)
    assert not thread.is_alive()
    assert not lock_holders(db, box["id"])
