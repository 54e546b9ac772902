"""Load: simulated users against the whole desk, then a check that nothing was lost.

`--users` threads (each a user on its own keep-alive connection) for `--seconds` against
`supportdesk web` (gunicorn, `--workers` workers, two threads each by default), with
`supportdesk worker` sending to an SMTP sink of its own process. Each user picks, by weight:

- open a ticket on the public API (a customer; a new address each time),
- list the open tickets (an ADMIN, with a token),
- view a ticket and its conversation (an ADMIN),
- reply to a ticket (an ADMIN; the reply is emailed to the customer).

At the same time, for the same `--seconds`:

- two company mailboxes in a real Dovecot (tests/imapserver.py) each receive `--imap-rate`
  messages a second, APPENDed over IMAP (each a new ticket from a new customer, with its own
  Message-ID), fetched by the same `supportdesk worker` (IDLE);
- two outgoing webhooks (`POST /api/webhooks`, WEBHOOK_ALLOW_PRIVATE=true) point at a
  receiver in this process (http.server in threads): one for `ticket.created` and
  `message.created`, one for `ticket.status_changed` and `ticket.assigned`.

Reported: throughput and p50/p95/p99 per operation, and for mail arrival to ticket (the
APPEND's start to the storing transaction's `created_at`) and webhook delivery (the change's
transaction, the delivery row's `created_at`, to the receiver reading the request). Then,
checked by the benchmark itself: no error answer; every ticket and reply it was told about
is in the database; every APPENDed Message-ID is stored exactly once; every email in the
outbox was SENT and reached the sink exactly once (an acknowledgement per ticket, web or
IMAP, one per reply); every webhook delivery row was SENT and received exactly once, with a
valid signature, and nothing else was received. The lost and doubled counts are printed and
must be 0.

Run: `make bench-load` (`BENCH_ARGS="--users 20 --seconds 20"` for a quicker run). Needs
Dovecot (`apt-get install dovecot-imapd`).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import imaplib
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import (
    bench_settings,
    describe,
    percentile,
    server_shape,
    services,
    web_server,
)
from bench.imap import _idling, add_mailbox
from bench.tickets import request
from bench.worker import sink_and_worker, wait_for
from supportdesk.accounts.staff import create_admin
from supportdesk.core.db import Database
from tests.imapserver import Dovecot

ADMIN_EMAIL, ADMIN_PASSWORD = "load-admin@example.com", "a long load-test password"
WEIGHTS = {"open ticket": 30, "list": 30, "view ticket": 25, "reply": 15}
SEED_TICKETS = 50
MAILBOXES = ("sales@desk.example", "help@desk.example")
WEBHOOKS = {  # path at the receiver: the events it asks for
    "/hook/tickets": ["ticket.created", "message.created"],
    "/hook/changes": ["ticket.status_changed", "ticket.assigned"],
}
WEBHOOK_SECRET = "bench-load-webhook-secret"


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sd-bench-load-"))
    print(
        f"bench-load: {os.cpu_count()} CPUs (load average {load_average()}), {args.users} users "
        f"for {args.seconds}s, {server_shape(args.workers)}, 1 worker process; "
        f"{len(MAILBOXES)} IMAP mailboxes at {args.imap_rate:g} messages/s each; "
        f"{len(WEBHOOKS)} webhooks"
    )
    home = folder / "dovecot"
    folder.chmod(0o755)  # Dovecot's unprivileged processes read it
    dovecot = Dovecot(home)
    dovecot.start()
    receiver = Receiver()
    # The worker (started below with this environment) trusts Dovecot's certificate and may
    # post to 127.0.0.1; the web server may register such a webhook.
    os.environ["SSL_CERT_FILE"] = str(dovecot.cert_file)
    os.environ["WEBHOOK_ALLOW_PRIVATE"] = "true"
    # Thousands of acknowledgements to one domain, now from the worker too (the mail).
    os.environ["ACKS_PER_DOMAIN_PER_HOUR"] = os.environ["ACKS_PER_HOUR"] = "1000000000"
    try:
        with services() as (database_url, redis_url):
            settings = bench_settings(database_url, redis_url)
            db = Database(settings).open(wait=True)
            create_admin(db, ADMIN_EMAIL, "Load Admin", ADMIN_PASSWORD, 12)
            for address in MAILBOXES:
                dovecot.add_user(address)
                add_mailbox(db, settings, dovecot, address, backfill_days=0)
            try:
                with (
                    web_server(database_url, redis_url, args.workers) as server,
                    sink_and_worker(settings, folder, "load") as sink,
                ):
                    run = Run(server.port)
                    run.register_webhooks(receiver.port)
                    for address in MAILBOXES:
                        wait_for(lambda a=address: _idling(db, a), 120, f"the mailbox {address}")
                    run.seed(SEED_TICKETS)
                    senders = [
                        MailSender(dovecot, address, args.imap_rate) for address in MAILBOXES
                    ]
                    threads = [
                        threading.Thread(target=sender.run, args=(time.monotonic() + args.seconds,))
                        for sender in senders
                    ]
                    for thread in threads:
                        thread.start()
                    run.load(args.users, args.seconds)
                    for thread in threads:
                        thread.join()
                    appended = {mid: t for s in senders for mid, t in s.appended.items()}
                    for sender in senders:
                        run.errors.extend(sender.errors)
                    wait_for(lambda: stored_count(db, appended) >= len(appended), 300, "the mail")
                    wait_for(lambda: all_sent(db), 600, "every email and webhook sent")
                    arrivals = arrival_latencies(db, appended)
                    deliveries = delivery_latencies(db, receiver)
                    report(run, args.seconds, arrivals, deliveries)
                check(run, db, sink, appended, receiver)
            finally:
                db.close()
    finally:
        receiver.stop()
        dovecot.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--imap-rate", type=float, default=5, help="messages a second into each mailbox"
    )
    return parser.parse_args()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def all_sent(db: Database) -> bool:
    """No email and no webhook delivery left to send (a DEAD one counts as left: the check
    reports it)."""
    with db.transaction() as conn:
        return (
            conn.execute(
                "SELECT (SELECT count(*) FROM email_outbox WHERE status <> 'SENT') "
                "+ (SELECT count(*) FROM webhook_deliveries WHERE status <> 'SENT')"
            ).fetchone()[0]
            == 0
        )


def stored_count(db: Database, appended: dict[str, float]) -> int:
    with db.transaction() as conn:
        return conn.execute(
            "SELECT count(*) FROM ticket_messages WHERE email_message_id = ANY(%s)",
            (list(appended),),
        ).fetchone()[0]


def arrival_latencies(db: Database, appended: dict[str, float]) -> list[float]:
    """Seconds from each APPEND's start to the storing transaction."""
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT email_message_id, extract(epoch FROM created_at) FROM ticket_messages "
            "WHERE email_message_id = ANY(%s)",
            (list(appended),),
        ).fetchall()
    return [float(at) - appended[mid] for mid, at in rows]


def delivery_latencies(db: Database, receiver: Receiver) -> list[float]:
    """Seconds from the change's transaction to the receiver reading the delivery (its first
    receipt, if it came twice: the check counts those)."""
    first: dict[int, float] = {}
    for got in receiver.received:
        first.setdefault(got.delivery, got.at)
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT id, extract(epoch FROM created_at) FROM webhook_deliveries"
        ).fetchall()
    return [first[i] - float(at) for i, at in rows if i in first]


# --- the mail that arrives over IMAP ------------------------------------------------------------


class MailSender:
    """APPENDs `rate` new-ticket messages a second into one mailbox, on one IMAP connection,
    on a fixed schedule (a late one is sent at once, not skipped)."""

    def __init__(self, dovecot: Dovecot, address: str, rate: float):
        self.dovecot, self.address, self.rate = dovecot, address, rate
        self.appended: dict[str, float] = {}  # Message-ID: time.time() the APPEND began
        self.errors: list[str] = []

    def run(self, deadline: float) -> None:
        try:
            self._run(deadline)
        except Exception as error:  # the thread's end is an error the check reports
            self.errors.append(f"IMAP sender {self.address} stopped: {error!r}")

    def _run(self, deadline: float) -> None:
        client = self.dovecot.connect(self.address)
        start = time.monotonic()
        local = self.address.split("@")[0]
        try:
            for n in itertools.count():
                due = start + n / self.rate
                if due >= deadline:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                message_id = f"<load.{local}.{n}.{time.time_ns()}@customers.example>"
                raw = (
                    f"From: Mail Customer {n} <{local}{n}@customers.example>\r\n"
                    f"To: {self.address}\r\nSubject: {local} by mail {n}: the invoice is wrong"
                    f"\r\nMessage-ID: {message_id}\r\nDate: "
                    f"{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                    "The invoice says 12 seats; we have 10.\r\n"
                ).encode()
                sent_at = time.time()
                try:
                    status, answer = client.append("INBOX", None, None, raw)
                except (OSError, imaplib.IMAP4.error) as error:
                    self.errors.append(f"IMAP APPEND {self.address}: {error!r}")
                    client = self.dovecot.connect(self.address)
                    continue
                if status != "OK":
                    self.errors.append(f"IMAP APPEND {self.address}: {status} {answer!r}")
                    continue
                self.appended[message_id] = sent_at
        finally:
            client.logout()


# --- the webhooks' receiver -----------------------------------------------------------------


class Got:
    def __init__(self, at: float, path: str, delivery: int, event: str, signed: bool):
        self.at, self.path, self.delivery, self.event, self.signed = (
            at,
            path,
            delivery,
            event,
            signed,
        )


class Receiver:
    """http.server in threads on 127.0.0.1: records when each delivery arrived and whether
    its signature verifies, and answers 200."""

    def __init__(self) -> None:
        self.received: list[Got] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the worker's pool expects

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                at = time.time()
                timestamp = self.headers.get("X-Timestamp", "")
                mac = hmac.new(
                    WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256
                )
                signed = hmac.compare_digest(
                    "sha256=" + mac.hexdigest(), self.headers.get("X-Signature", "")
                )
                delivery = int(self.headers.get("X-Webhook-Delivery") or -1)
                if json.loads(body).get("id") != delivery:
                    signed = False  # the body's id is the header's, or something is wrong
                with lock:
                    received.append(
                        Got(at, self.path, delivery, self.headers.get("X-Webhook-Event"), signed)
                    )
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Run:
    def __init__(self, port: int):
        self.port = port
        self.pids: list[str] = []
        self.replies = 0
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.numbers = itertools.count()
        conn = self.connect()
        status, body = request(
            conn, "POST", "/api/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert status == 200, body
        self.staff = {"Authorization": "Bearer " + json.loads(body)["token"]}
        conn.close()

    def register_webhooks(self, port: int) -> None:
        conn = self.connect()
        for path, events in WEBHOOKS.items():
            body = {"url": f"http://127.0.0.1:{port}{path}", "events": events}
            status, answer = request(
                conn, "POST", "/api/webhooks", body | {"secret": WEBHOOK_SECRET}, self.staff
            )
            assert status == 201, answer
        conn.close()

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def seed(self, count: int) -> None:
        conn = self.connect()
        for _ in range(count):
            self.open_ticket(conn)
        conn.close()
        self.times.clear()

    def load(self, users: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        threads = [
            threading.Thread(target=self.user, args=(deadline, random.Random(n)))
            for n in range(users)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def user(self, deadline: float, rng: random.Random) -> None:
        conn = self.connect()
        operations = list(WEIGHTS)
        weights = list(WEIGHTS.values())
        while time.monotonic() < deadline:
            name = rng.choices(operations, weights)[0]
            try:
                {
                    "open ticket": self.open_ticket,
                    "list": self.list_open,
                    "view ticket": lambda c: self.view(c, rng),
                    "reply": lambda c: self.reply(c, rng),
                }[name](conn)
            except (OSError, http.client.HTTPException) as error:
                with self.lock:
                    self.errors.append(f"{name}: {error!r}")
                conn.close()
                conn = self.connect()
        conn.close()

    def timed(self, name, conn, method, path, body=None, headers=None, expect=200) -> bytes:
        started = time.perf_counter()
        status, answer = request(conn, method, path, body, headers)
        took = time.perf_counter() - started
        with self.lock:
            self.times[name].append(took)
            if status != expect:
                self.errors.append(f"{name}: {status} {answer[:200]!r}")
        return answer

    def open_ticket(self, conn) -> None:
        n = next(self.numbers)
        body = {
            "name": f"Load Customer {n}",
            "email": f"load{n}@example.org",
            "subject": f"Load request {n}: the export hangs",
            "body": "It hangs at 90% every time.",
        }
        answer = self.timed("open ticket", conn, "POST", "/api/tickets", body, expect=201)
        pid = json.loads(answer).get("ticket", {}).get("pid")
        if pid:
            with self.lock:
                self.pids.append(pid)

    def list_open(self, conn) -> None:
        self.timed("list", conn, "GET", "/api/tickets?status=OPEN", headers=self.staff)

    def pick(self, rng: random.Random) -> str:
        with self.lock:
            return rng.choice(self.pids)

    def view(self, conn, rng: random.Random) -> None:
        pid = self.pick(rng)
        started = time.perf_counter()
        self.timed("view ticket", conn, "GET", f"/api/tickets/{pid}", headers=self.staff)
        self.timed("view ticket", conn, "GET", f"/api/tickets/{pid}/messages", headers=self.staff)
        with self.lock:  # one "view" is both requests, as the page needs both
            self.times["view ticket"][-2:] = [time.perf_counter() - started]

    def reply(self, conn, rng: random.Random) -> None:
        pid = self.pick(rng)
        body = {"body": "We are looking into it."}
        self.timed(
            "reply", conn, "POST", f"/api/tickets/{pid}/messages", body, self.staff, expect=201
        )
        with self.lock:
            self.replies += 1


def report(run: Run, seconds: float, arrivals: list[float], deliveries: list[float]) -> None:
    total = sum(len(t) for t in run.times.values())
    print(f"\n  {total:,} operations in {seconds:.0f}s: {total / seconds:,.1f}/s")
    rows = [(name, run.times[name]) for name in WEIGHTS]
    rows += [("mail->ticket", arrivals), ("webhook", deliveries)]
    for name, times in rows:
        if not times:
            continue
        print(
            f"  {name:12s} {len(times) / seconds:7.1f}/s   {describe(times)}"
            f"   p99 {percentile(times, 99) * 1000:8.2f} ms"
        )
    print(
        f"  (mail->ticket and webhook: n over the {seconds:.0f}s of load; delivery went on after)"
    )
    print(f"  load average now: {load_average()}")
    print(f"  errors: {len(run.errors)}")
    for error in run.errors[:10]:
        print(f"    {error}")


def check(
    run: Run,
    db: Database,
    sink,
    appended: dict[str, float],
    receiver: Receiver,
) -> None:
    """Nothing lost, nothing doubled: what the users were told, what was APPENDed and what the
    outbox and the deliveries hold is what the database, the sink and the receiver have."""
    with db.transaction() as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        known = conn.execute(
            "SELECT count(*) FROM tickets WHERE pid = ANY(%s)", (run.pids,)
        ).fetchone()[0]
        replies = conn.execute(
            "SELECT count(*) FROM ticket_messages WHERE author = 'STAFF'"
        ).fetchone()[0]
        stored_mail = Counter(
            mid
            for (mid,) in conn.execute(
                "SELECT email_message_id FROM ticket_messages WHERE email_message_id IS NOT NULL"
            )
        )
        outbox = dict(conn.execute("SELECT message_id, status FROM email_outbox"))
        hooks = {
            i: (status, path)
            for i, status, path in conn.execute(
                "SELECT d.id, d.status, substring(w.url from '/hook/.*$') "
                "FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
            )
        }
    at_sink = Counter(
        line.split(" ", 3)[3] for line in sink.out.read_text().splitlines() if line.strip()
    )
    at_receiver = Counter(got.delivery for got in receiver.received)
    counts = {
        "IMAP messages": (
            sum(1 for mid in appended if stored_mail[mid] == 0),
            sum(1 for mid in appended if stored_mail[mid] > 1),
        ),
        "emails": (
            sum(1 for mid, status in outbox.items() if status != "SENT" or not at_sink[mid]),
            sum(1 for n in at_sink.values() if n > 1),
        ),
        "webhook deliveries": (
            sum(1 for i, (status, _) in hooks.items() if status != "SENT" or not at_receiver[i]),
            sum(1 for n in at_receiver.values() if n > 1),
        ),
    }
    problems = []
    if run.errors:
        problems.append(f"{len(run.errors)} error answers")
    if not (tickets == known + len(appended) and known == len(run.pids)):
        problems.append(
            f"tickets: told {len(run.pids)}, found {known} of them, {tickets} in all "
            f"({len(appended)} by mail)"
        )
    if replies != run.replies:
        problems.append(f"replies: told {run.replies}, stored {replies}")
    if len(outbox) != len(run.pids) + run.replies + len(appended):
        problems.append(
            f"emails: {len(outbox)} in the outbox, {len(run.pids) + run.replies + len(appended)} "
            "expected (an acknowledgement per ticket, one per reply)"
        )
    strangers = set(at_sink) - set(outbox)
    if strangers:
        problems.append(f"{len(strangers)} emails at the sink that the outbox never held")
    unknown = set(at_receiver) - set(hooks)
    if unknown:
        problems.append(f"{len(unknown)} webhook deliveries received that were never queued")
    unsigned = sum(1 for got in receiver.received if not got.signed)
    if unsigned:
        problems.append(f"{unsigned} webhook requests with a bad signature or id")
    misrouted = sum(
        1
        for got in receiver.received
        if got.delivery in hooks and hooks[got.delivery][1] != got.path
    )
    if misrouted:
        problems.append(f"{misrouted} webhook deliveries at the wrong receiver path")
    events = Counter(got.event for got in receiver.received)
    print(
        f"\n  afterwards: {tickets:,} tickets ({len(appended):,} by IMAP), {replies:,} replies, "
        f"{len(outbox):,} emails, {len(hooks):,} webhook deliveries "
        f"({', '.join(f'{e} {n:,}' for e, n in sorted(events.items()))})"
    )
    for what, (lost, doubled) in counts.items():
        print(f"  {what:20s} lost {lost}   doubled {doubled}")
        if lost or doubled:
            problems.append(f"{what}: {lost} lost, {doubled} doubled")
    if problems:
        raise SystemExit("LOST OR WRONG: " + "; ".join(problems))
    print("  nothing lost, nothing doubled: every ticket, reply, IMAP message, email and webhook")


if __name__ == "__main__":
    sys.exit(main())
