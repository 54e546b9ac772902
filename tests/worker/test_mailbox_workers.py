"""Mailbox fetchers in real `supportdesk worker` processes against a real Dovecot: one
fetcher per mailbox across workers, a lost worker's mailbox taken over, and a worker killed
in the middle of an import losing and doubling nothing."""

from __future__ import annotations

import signal
import time

import pytest
from psycopg.rows import dict_row

from supportdesk.core.redis_client import make_redis
from supportdesk.mail.inbound.fetchers import LOCK_NAMESPACE
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
            | over
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
        "AND classid = %s AND objid = %s",
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
