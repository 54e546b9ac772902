"""A company mailbox over IMAP (DESIGN.md section 10): a real Dovecot, a real `supportdesk
worker`, in the same run as a bare baseline.

(a) Backfill rate: `--messages` varied messages (bench/imap_corpus.py: plain, HTML,
    attachments, replies to earlier ones) delivered into a Dovecot mailbox; then
    - the baseline: a bare `imaplib` fetch of every message (BODY.PEEK[] in batches) and
      an `email` parse that walks each one's parts, in this process;
    - the desk: a mailbox with `backfill_days` set, fetched by one `supportdesk worker`
      process (the advisory lock, the parse sandbox, the inbound service, the UID advanced
      with each message, each marked seen): messages per second into tickets, from the
      worker's start and from its first stored message, and the ratio to the baseline.
    Target: >= 150 messages/s on 2 cores.
(b) Latency with IDLE: a second mailbox, fetched by the same worker and idle; `--latency`
    messages APPENDed one at a time, each timed until the API's ticket list finds it
    (`GET /api/tickets?q=<its subject>` polled every 10 ms). Target: p95 <= 1 s.
(c) Worker RSS with both mailboxes connected: the worker process itself, and with its parse
    children. Target: <= 80 MiB.

Run: `make bench-imap` (`BENCH_ARGS="--messages 2000"` for a quicker run). Needs Dovecot
(`apt-get install dovecot-imapd`).
"""

from __future__ import annotations

import argparse
import email
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from email import policy
from pathlib import Path

from bench.common import (
    SECRET_KEY,
    bench_settings,
    percentile,
    services,
    web_server,
)
from bench.imap_corpus import corpus
from bench.worker import SinkProcess, wait_for
from supportdesk.accounts.auth import hash_password
from supportdesk.core.db import Database
from supportdesk.mail.mailboxes.secrets import SecretBox
from tests.imapserver import Dovecot
from tests.processes import SUPPORTDESK

MAIL_FROM = "Support <support@desk.example>"
ADMIN_EMAIL = "bench-admin@desk.example"
ADMIN_PASSWORD = "bench-password-123"


def main() -> None:
    args = parse_args()
    home = Path(tempfile.mkdtemp(prefix="sd-bench-imap-"))
    home.chmod(0o755)  # Dovecot's unprivileged processes read it
    try:
        with services() as (database_url, redis_url):
            run(args, home, database_url, redis_url)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.imap", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages to backfill")
    parser.add_argument("--latency", type=int, default=60, help="messages timed with IDLE")
    return parser.parse_args()


def run(args: argparse.Namespace, home: Path, database_url: str, redis_url: str) -> None:
    settings = bench_settings(database_url, redis_url)
    db = Database(settings).open(wait=True)
    dovecot = Dovecot(home / "dovecot")
    dovecot.start()
    try:
        backlog = dovecot.add_user("backlog@desk.example")
        live = dovecot.add_user("live@desk.example")
        print(f"== {args.messages:,} messages into a Dovecot mailbox")
        started = time.perf_counter()
        deliver(dovecot, backlog, corpus(args.messages))
        print(f"   delivered in {time.perf_counter() - started:.1f} s (maildir, as an MDA does)")

        baseline = bare_fetch(dovecot, backlog)
        print(f"== (a) baseline: imaplib fetch + email parse: {baseline:8.1f} messages/s")

        add_mailbox(db, settings, dovecot, backlog, backfill_days=30)
        add_mailbox(db, settings, dovecot, live, backfill_days=0)
        add_admin(db)
        os.environ["SSL_CERT_FILE"] = str(dovecot.cert_file)  # the worker trusts Dovecot
        with worker(settings, home) as process:
            rate_from_start, rate_stored = backfill(db, process.started, args.messages)
            ratio = rate_stored / baseline
            print(
                f"   the desk: one worker:      {rate_stored:8.1f} messages/s from its first "
                f"stored message ({rate_from_start:.1f}/s from its start)\n"
                f"   ratio desk/baseline: {ratio:.2f}   target >= 150/s: "
                f"{'met' if rate_stored >= 150 else 'MISSED'}"
            )
            latencies = idle_latency(db, dovecot, live, database_url, redis_url, args.latency)
            p95 = percentile(latencies, 95)
            print(
                f"== (b) APPEND -> visible in the API, with IDLE: median "
                f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms (n={len(latencies)})   target p95 <= 1 s: "
                f"{'met' if p95 <= 1.0 else 'MISSED'}"
            )
            own, total = rss_mib(process.pid)
            print(
                f"== (c) worker RSS with two mailboxes connected: {own:.1f} MiB "
                f"({total:.1f} MiB with its parse children)   target <= 80 MiB: "
                f"{'met' if own <= 80 else 'MISSED'}"
            )
    finally:
        dovecot.stop()
        db.close()


# --- the mailbox ------------------------------------------------------------------------------


def deliver(dovecot: Dovecot, user: str, messages) -> None:
    """Write the messages into the user's maildir `new/`, as a delivery agent does."""
    root = dovecot.dir / "mail" / user
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    stamp = int(time.time())
    for n, raw in enumerate(messages):
        (root / "new" / f"{stamp}.M{n}P1.bench").write_bytes(raw)
    if os.geteuid() == 0:
        for path in [root, *root.rglob("*")]:
            shutil.chown(path, dovecot.uid, dovecot.gid)


def bare_fetch(dovecot: Dovecot, user: str) -> float:
    """Messages/s of a bare imaplib fetch of the whole folder with an email parse of each."""
    client = dovecot.connect(user)
    client.select("INBOX", readonly=True)
    _, data = client.uid("SEARCH", "ALL")
    uids = data[0].split()
    started = time.perf_counter()
    count = 0
    for i in range(0, len(uids), 200):
        batch = b",".join(uids[i : i + 200]).decode()
        _, items = client.uid("FETCH", batch, "(BODY.PEEK[])")
        for item in items:
            if isinstance(item, tuple):
                message = email.message_from_bytes(item[1], policy=policy.default)
                for part in message.walk():
                    if not part.is_multipart():
                        part.get_content()
                count += 1
    elapsed = time.perf_counter() - started
    client.logout()
    assert count == len(uids), (count, len(uids))
    return count / elapsed


def add_mailbox(db: Database, settings, dovecot: Dovecot, user: str, backfill_days: int) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO mailboxes (address, imap_host, imap_port, imap_security, username, "
            "secret_encrypted, backfill_days) VALUES (%s, %s, %s, 'SSL', %s, %s, %s)",
            (
                user,
                dovecot.host,
                dovecot.ssl_port,
                user,
                SecretBox(settings).seal(dovecot.passwords[user]),
                backfill_days,
            ),
        )


def add_admin(db: Database) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO users (email, name, role, password_hash) "
            "VALUES (%s, 'Bench', 'ADMIN', %s)",
            (ADMIN_EMAIL, hash_password(ADMIN_PASSWORD, rounds=4)),
        )


# --- the worker -------------------------------------------------------------------------------


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], started: float):
        self.process = process
        self.started = started

    @property
    def pid(self) -> int:
        return self.process.pid


class worker:
    """One `supportdesk worker` (its SMTP a sink, so acknowledgements are sent as usual)."""

    def __init__(self, settings, home: Path):
        self.settings = settings
        self.home = home

    def __enter__(self) -> _Worker:
        self.sink = SinkProcess(self.home, "imap")
        env = dict(os.environ) | {
            "DATABASE_URL": self.settings.database_url,
            "REDIS_URL": self.settings.redis_url,
            "SECRET_KEY": SECRET_KEY,
            "ENVIRONMENT": "test",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.sink.port),
            "MAIL_FROM": MAIL_FROM,
            "ACKS_PER_DOMAIN_PER_HOUR": "1000000000",
            "ACKS_PER_HOUR": "1000000000",
        }
        self.log = (self.home / "worker.log").open("wb")
        started = time.time()
        process = subprocess.Popen(
            [SUPPORTDESK, "worker"], env=env, stdout=self.log, stderr=self.log
        )
        self.worker = _Worker(process, started)
        return self.worker

    def __exit__(self, *exc: object) -> None:
        self.worker.process.send_signal(signal.SIGTERM)
        try:
            self.worker.process.wait(60)
        except subprocess.TimeoutExpired:
            self.worker.process.kill()
        self.log.close()
        self.sink.stop()
        if exc[0] is not None:
            print((self.home / "worker.log").read_text(errors="replace")[-3000:])


def backfill(db: Database, started: float, expected: int) -> tuple[float, float]:
    """(messages/s from the worker's start, messages/s from its first stored message)."""

    def stored() -> int:
        with db.transaction() as conn:
            return conn.execute(
                "SELECT count(*) FROM ticket_messages WHERE channel = 'EMAIL'"
            ).fetchone()[0]

    wait_for(lambda: stored() >= expected, 3600, f"{expected} messages to be stored")
    with db.transaction() as conn:
        first, last, count = conn.execute(
            "SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)), "
            "count(*) FROM ticket_messages WHERE channel = 'EMAIL'"
        ).fetchone()
    assert count == expected, f"{count} messages stored, {expected} delivered"
    return count / (float(last) - started), count / max(float(last) - float(first), 1e-6)


def idle_latency(
    db: Database, dovecot: Dovecot, user: str, database_url: str, redis_url: str, count: int
) -> list[float]:
    with web_server(database_url, redis_url, workers=1) as server:
        token = _login(server.port)
        client = dovecot.connect(user)
        wait_for(lambda: _idling(db, user), 120, "the live mailbox's fetcher")
        latencies = []
        try:
            for n in range(count):
                subject = f"latency probe {n} {time.time_ns()}"
                raw = (
                    f"From: Probe <probe{n}@customers.example>\r\nTo: {user}\r\n"
                    f"Subject: {subject}\r\nMessage-ID: <probe.{time.time_ns()}@customers.example>"
                    "\r\n\r\nHow long until you see this?\r\n"
                ).encode()
                started = time.perf_counter()
                client.append("INBOX", None, None, raw)
                while not _visible(server.port, token, subject):
                    if time.perf_counter() - started > 30:
                        raise SystemExit(f"probe {n} did not arrive within 30 s")
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.2)  # one at a time, the fetcher back in IDLE
        finally:
            client.logout()
    return latencies


def _idling(db: Database, user: str) -> bool:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT status, last_fetch_at FROM mailboxes WHERE address = %s", (user,)
        ).fetchone()
    return row is not None and row[0] == "OK" and row[1] is not None


def _login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    conn.request("POST", "/api/auth/login", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return data["token"]


def _visible(port: int, token: str, subject: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    query = urllib.parse.urlencode({"q": subject})
    conn.request("GET", f"/api/tickets?{query}", headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return bool(data.get("items"))


def rss_mib(pid: int) -> tuple[float, float]:
    """(the process's RSS, with its children's) in MiB."""

    def rss(p: int) -> float:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text:
            children.append(int(status.parent.name))
    own = rss(pid)
    return own, own + sum(rss(c) for c in children)


if __name__ == "__main__":
    main()
