"""Mailbox fetchers in real `supportdesk worker` processes against a real Dovecot: one
fetcher per mailbox across workers, a lost worker's mailbox taken over, and a worker killed
in the middle of an import losing and doubling nothing. And the faults of issue 24: Dovecot
stopped while mail arrives, an IDLE dropped by the server, an OAuth refresh refused then
authorized again, and a worker host killed holding a mailbox and the scheduler."""

from __future__ import annotations

import email
import os
import signal
import threading
import time
from urllib.parse import urlsplit

import psycopg
import pytest
import webtest
from psycopg.rows import dict_row

from supportdesk.accounts.audit import SYSTEM
from supportdesk.core.redis_client import make_redis
from supportdesk.mail.inbound.fetcher import FetchTimings, MailboxFetcher
from supportdesk.mail.inbound.fetchers import LOCK_NAMESPACE, MailboxFetchers
from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.tickets.inputs import TicketChange
from supportdesk.web.services import build_services
from supportdesk.worker.scheduler import LOCK_NAMESPACE as SCHEDULER_LOCK
from tests.conftest import shared_app
from tests.mail.test_fetcher import mail, wait_until
from tests.oauthserver import CLIENT_ID, CLIENT_SECRET, connect_mailbox, insert_mailbox


@pytest.fixture
def start_worker(worker_process, dovecot):
    def start(name: str, **env: str):
        return worker_process(
            name,
            SSL_CERT_FILE=str(dovecot.cert_file),  # trust the test server's certificate
            IMAP_POLL_SECONDS="0.5",
            IMAP_RETRY_MAX_SECONDS="1",
            IMAP_TIMEOUT_SECONDS="5",
            **env,
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
        # The scanner takes the lock, then records the fetcher it starts: wait for both.
        wait_until(
            lambda: (
                lock_holders(db, box["id"]) not in ([], [holder])
                and getattr(fetchers.running.get(box["id"]), "fetcher", first) is not first
            ),
            message="locked again by a new fetcher",
        )
        second = fetchers.running[box["id"]].fetcher

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


# --- faults (issue 24), each through real `supportdesk worker` processes --------------------


def deliver_while_stopped(dovecot, username: str, message: bytes, n: int) -> None:
    """Put `message` into the user's INBOX while Dovecot is down, as a local delivery agent
    would: written into the Maildir's tmp/ and renamed into new/ (Dovecot gives it a UID
    when it next looks)."""
    home = dovecot.dir / "mail" / username
    name = f"{time.time_ns()}.fault{n}.localhost"
    (home / "tmp" / name).write_bytes(message)
    if os.geteuid() == 0:
        os.chown(home / "tmp" / name, dovecot.uid, dovecot.gid)
    os.rename(home / "tmp" / name, home / "new" / name)


def message_ids(messages: list[bytes]) -> list[str]:
    return [email.message_from_bytes(raw)["Message-ID"] for raw in messages]


def test_dovecot_stopped_while_mail_arrives_loses_and_doubles_nothing(
    db, dovecot, imap_user, mailbox, start_worker
):
    """Mail before, during and after an outage of the IMAP server. The outage lasts 8 s
    instead of a minute: with IMAP_RETRY_MAX_SECONDS=1 (the default is 300) that is about
    eight failed connections in a row, backing off, as a minute is against the defaults."""
    box = mailbox()
    worker = start_worker("fetching")
    wait_until(lambda: status(db, box["id"]) == "OK", timeout=30, message="connected")
    sent = [mail(n) for n in range(3)]
    for raw in sent:
        dovecot.append(imap_user, raw)
    wait_until(lambda: len(imported(db)) == 3, timeout=30, message="the mail before")
    last = mail(3)  # arrives as the server goes down: fetched before or after, not both
    sent.append(last)
    dovecot.append(imap_user, last)
    dovecot.stop()
    try:
        for n in range(4, 8):  # delivered while the IMAP server is down
            raw = mail(n)
            sent.append(raw)
            deliver_while_stopped(dovecot, imap_user, raw, n)
            time.sleep(0.5)
        wait_until(lambda: status(db, box["id"]) == "ERROR", timeout=10, message="ERROR")
        time.sleep(6)
        attempts = worker.log_path.read_text().count(f"mailbox {box['id']}: 127.0.0.1:")
        assert attempts >= 5, "the outage should span several attempts"
    finally:
        dovecot.start()
    for n in range(8, 11):
        raw = mail(n)
        sent.append(raw)
        dovecot.append(imap_user, raw)
    wait_until(lambda: len(imported(db)) >= len(sent), timeout=30, message="every message")
    wait_until(lambda: status(db, box["id"]) == "OK", timeout=10, message="OK again")
    time.sleep(1.5)  # more polls: nothing comes twice
    assert sorted(imported(db)) == sorted(message_ids(sent))
    assert len(query(db, "SELECT id FROM tickets")) == len(sent)


def test_an_idle_dropped_by_the_server_is_resumed_by_the_worker_process(
    db, dovecot, imap_user, mailbox, start_worker
):
    box = mailbox()
    worker = start_worker("idling")
    wait_until(lambda: status(db, box["id"]) == "OK", timeout=30, message="connected")
    dovecot.append(imap_user, mail(0))
    wait_until(lambda: len(imported(db)) == 1, timeout=30, message="the first message")
    time.sleep(1.0)  # back in IDLE
    dovecot.kick(imap_user)
    dovecot.append(imap_user, mail(1))
    wait_until(lambda: len(imported(db)) == 2, timeout=20, message="mail after the drop")
    # The process's log reaches its file on its own time: waited for, not read at once.
    wait_until(
        lambda: "the server ended the session; connecting again" in worker.log_path.read_text(),
        timeout=10,
        message="the drop noticed and the session resumed",
    )
    time.sleep(1.0)
    assert len(set(imported(db))) == 2
    assert status(db, box["id"]) == "OK"


def notices(smtp_server) -> list:
    return [r for r in smtp_server.accepted() if "must be connected again" in r.header("Subject")]


def test_a_refused_oauth_refresh_pauses_the_mailbox_until_it_is_authorized_again(
    db, configured, box, oauth, dovecot, imap_user, start_worker, make_staff, tokens,
    smtp_server,
):  # fmt: skip
    """End to end: the worker process logs in with XOAUTH2 (checked by Dovecot against the
    test authorization server); the refresh is refused -> REAUTHORIZE, the ADMIN told, the
    mailbox let go and not fetched; an ADMIN connects it again through the OAuth flow ->
    the mail that arrived meanwhile is fetched, once."""
    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        row = insert_mailbox(
            conn, address=imap_user, username=imap_user, imap_host=dovecot.host,
            imap_port=dovecot.ssl_port,
        )  # fmt: skip
    connect_mailbox(db, box, oauth, row["id"], imap_user)
    start_worker(
        "oauth",
        OAUTH_CUSTOM_CLIENT_ID=CLIENT_ID,
        OAUTH_CUSTOM_CLIENT_SECRET=CLIENT_SECRET,
        OAUTH_CUSTOM_AUTHORIZE_URL=oauth.authorize_url,
        OAUTH_CUSTOM_TOKEN_URL=oauth.token_url,
        OAUTH_CUSTOM_SCOPES=oauth.scope,
    )
    wait_until(
        lambda: query(db, "SELECT last_fetch_at FROM mailboxes")[0]["last_fetch_at"],
        timeout=30,
        message="connected with XOAUTH2",
    )  # (the OAuth flow sets OK by itself; a fetch on record is the fetcher's)
    sent = [mail(1)]
    dovecot.append(imap_user, sent[0])
    wait_until(lambda: len(imported(db)) == 1, timeout=30, message="fetched with XOAUTH2")

    # Consent withdrawn: the stored token's time is up and the refresh is refused.
    with db.transaction() as conn:
        conn.execute(
            "UPDATE mailboxes SET access_token_expires_at = now() WHERE id = %s", (row["id"],)
        )
    oauth.revoke(imap_user)
    oauth.expire_access_tokens()
    dovecot.kick(imap_user)  # the session ends: the next login needs a fresh token
    wait_until(lambda: status(db, row["id"]) == "REAUTHORIZE", timeout=20, message="paused")
    for n in (2, 3):  # arrives while the mailbox cannot be fetched
        sent.append(mail(n))
        dovecot.append(imap_user, sent[-1])
    refreshes = len(oauth.token_requests)
    time.sleep(2.5)  # several scans and polls
    assert imported(db) == message_ids(sent[:1])
    assert lock_holders(db, row["id"]) == []  # let go, not retried
    assert len(oauth.token_requests) == refreshes  # the provider is not asked again
    wait_until(lambda: notices(smtp_server), timeout=20, message="the ADMIN told")
    [notice] = notices(smtp_server)
    assert notice.rcpt_tos == [admin["email"]]

    # An ADMIN connects it again through the OAuth flow.
    app = shared_app(configured, db)
    browser = webtest.TestApp(app)
    browser.set_cookie("session", tokens.issue(admin)[0])
    start = browser.get(f"/mailboxes/{row['id']}/oauth/start", status=302)
    oauth.revoked_users.clear()  # the user consents again
    back = urlsplit(oauth.accept(start.headers["Location"], imap_user))
    browser.get(f"{back.path}?{back.query}", status=303)
    wait_until(lambda: len(imported(db)) >= 3, timeout=30, message="the mail that waited")
    sent.append(mail(4))
    dovecot.append(imap_user, sent[-1])
    wait_until(lambda: len(imported(db)) >= 4, timeout=30, message="new mail")
    time.sleep(1.0)
    assert sorted(imported(db)) == sorted(message_ids(sent))
    assert status(db, row["id"]) == "OK"
    assert len(notices(smtp_server)) == 1


def held_by(db, namespace: int, key: int) -> list[str]:
    """The application names (each worker host's PGAPPNAME) of the sessions holding an
    advisory lock in this run's database."""
    rows = query(
        db,
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        namespace,
        key,
    )
    return [row["application_name"] for row in rows]


def test_a_host_killed_holding_a_mailbox_and_the_scheduler_is_taken_over_by_the_other(
    db, database_url, services, dovecot, imap_user, mailbox, start_worker, open_ticket, make_staff
):
    """Two worker hosts (named to PostgreSQL by PGAPPNAME) share the database and Redis.
    Host A holds the mailbox's lock and, in the middle of a scheduler run, the scheduler's
    (its auto-close waits on a ticket this test keeps locked). A is killed with SIGKILL: B
    fetches the mailbox's new mail and runs the scheduler's jobs, well within a minute."""
    admin = make_staff("ADMIN")
    stale = []
    for n, hours in enumerate((3, 2)):  # the oldest is closed first
        ticket = open_ticket(subject=f"Resolved {n}", email=f"r{n}@example.org")
        services.tickets.update(admin, ticket["pid"], TicketChange(status="RESOLVED"))
        with db.transaction() as conn:
            conn.execute(
                "UPDATE tickets SET updated_at = now() - make_interval(hours => %s) WHERE id = %s",
                (hours, ticket["id"]),
            )
        stale.append(ticket)
    holders = []  # this test's own sessions, each keeping one ticket locked
    for ticket in stale:
        holder = psycopg.connect(database_url)
        holder.execute("SELECT 1 FROM tickets WHERE id = %s FOR UPDATE", (ticket["id"],))
        holders.append(holder)
    try:
        box = mailbox()
        timing = {"SCHEDULER_SECONDS": "0.5", "AUTO_CLOSE_AFTER": "1h"}
        host_a = start_worker("host-a", PGAPPNAME="host-a", **timing)
        wait_until(
            lambda: (
                held_by(db, LOCK_NAMESPACE, box["id"]) == ["host-a"]
                and held_by(db, SCHEDULER_LOCK, 0) == ["host-a"]
            ),
            timeout=30,
            message=f"host A holding both (see {host_a.log_path})",
        )
        host_b = start_worker("host-b", PGAPPNAME="host-b", **timing)
        wait_until(
            lambda: (
                "mailbox fetchers" in host_b.log_path.read_text()
                or query(db, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'host-b'")
            ),
            timeout=30,
            message="host B up",
        )
        time.sleep(1.5)  # B has tried both locks, more than once
        assert held_by(db, LOCK_NAMESPACE, box["id"]) == ["host-a"]
        assert held_by(db, SCHEDULER_LOCK, 0) == ["host-a"]

        host_a.send_signal(signal.SIGKILL)
        host_a.wait(10)
        killed = time.monotonic()
        holders.pop(0).close()  # the first ticket is free; B's run then waits on the second
        wait_until(
            lambda: ticket_status(db, stale[0]["id"]) == "CLOSED",  # A's run was cut short
            timeout=60,
            message=f"the auto-close, by B (see {host_b.log_path})",
        )
        wait_until(
            lambda: (
                held_by(db, LOCK_NAMESPACE, box["id"]) == ["host-b"]
                and held_by(db, SCHEDULER_LOCK, 0) == ["host-b"]
            ),
            timeout=30,
            message=f"host B holding both (see {host_b.log_path})",
        )
        assert time.monotonic() - killed < 60
        holders.pop(0).close()
        wait_until(lambda: ticket_status(db, stale[1]["id"]) == "CLOSED", message="B's run")
        new = mail(1)
        dovecot.append(imap_user, new)
        [new_id] = message_ids([new])
        wait_until(lambda: new_id in imported(db), timeout=30, message="new mail, fetched by B")
        # B's log reaches its file on its own time, after the rows: waited for, not read at once.
        said = [f"mailbox {box['id']}: UID 1 created"]
        said += [f"ticket {ticket['pid']} closed" for ticket in stale]  # by B's scheduler
        wait_until(
            lambda: all(line in host_b.log_path.read_text() for line in said),
            timeout=10,
            message=f"B's log saying what it did (see {host_b.log_path})",
        )
        for ticket in stale:  # A's run was cut short
            assert f"ticket {ticket['pid']} closed" not in host_a.log_path.read_text()
        for ticket in stale:
            events = query(
                db,
                "SELECT 1 FROM ticket_events WHERE ticket_id = %s AND type = 'AUTO_CLOSED'",
                ticket["id"],
            )
            assert len(events) == 1
    finally:
        for holder in holders:
            holder.close()


def ticket_status(db, ticket_id: int) -> str:
    return query(db, "SELECT status::text FROM tickets WHERE id = %s", ticket_id)[0]["status"]
