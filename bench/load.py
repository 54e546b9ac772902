"""Load: simulated users against the whole desk, then a check that nothing was lost.

`--users` threads (each a user on its own keep-alive connection) for `--seconds` against
`supportdesk web` (gunicorn, `--workers` workers, two threads each by default), with
`supportdesk worker` sending to an SMTP sink of its own process. Each user picks, by weight:

- open a ticket on the public API (a customer; a new address each time),
- list the open tickets (an ADMIN, with a token),
- view a ticket and its conversation (an ADMIN),
- reply to a ticket (an ADMIN; the reply is emailed to the customer).

Reported: throughput and p50/p95/p99 per operation. Then, checked by the benchmark itself:
no error answer; every ticket and reply it was told about is in the database; every email
those imply (an acknowledgement per ticket, one per reply) has reached the sink, once.

Run: `make bench-load` (`BENCH_ARGS="--users 20 --seconds 20"` for a quicker run).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench.common import (
    bench_settings,
    describe,
    percentile,
    server_shape,
    services,
    web_server,
)
from bench.tickets import request
from bench.worker import sink_and_worker, wait_for
from supportdesk.accounts.staff import create_admin
from supportdesk.core.db import Database

ADMIN_EMAIL, ADMIN_PASSWORD = "load-admin@example.com", "a long load-test password"
WEIGHTS = {"open ticket": 30, "list": 30, "view ticket": 25, "reply": 15}
SEED_TICKETS = 50


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sd-bench-load-"))
    print(
        f"bench-load: {os.cpu_count()} CPUs, {args.users} users for {args.seconds}s, "
        f"{server_shape(args.workers)}, 1 email worker"
    )
    with services() as (database_url, redis_url):
        settings = bench_settings(database_url, redis_url)
        db = Database(settings).open(wait=True)
        create_admin(db, ADMIN_EMAIL, "Load Admin", ADMIN_PASSWORD, 12)
        try:
            with (
                web_server(database_url, redis_url, args.workers) as server,
                sink_and_worker(settings, folder, "load") as sink,
            ):
                run = Run(server.port)
                run.seed(SEED_TICKETS)
                run.load(args.users, args.seconds)
                report(run, args.seconds)
                expected = len(run.pids) + run.replies
                wait_for(lambda: sent_count(db) >= expected, 300, "every email sent")
            check(run, db, sink.received, expected)
        finally:
            db.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    return parser.parse_args()


def sent_count(db: Database) -> int:
    """Emails the worker has had a 250 for (the sink reports its own count at the end)."""
    with db.transaction() as conn:
        return conn.execute("SELECT count(*) FROM email_outbox WHERE status = 'SENT'").fetchone()[0]


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


def report(run: Run, seconds: float) -> None:
    total = sum(len(t) for t in run.times.values())
    print(f"\n  {total:,} operations in {seconds:.0f}s: {total / seconds:,.1f}/s")
    for name in WEIGHTS:
        times = run.times[name]
        if not times:
            continue
        print(
            f"  {name:12s} {len(times) / seconds:7.1f}/s   {describe(times)}"
            f"   p99 {percentile(times, 99) * 1000:8.2f} ms"
        )
    print(f"  errors: {len(run.errors)}")
    for error in run.errors[:10]:
        print(f"    {error}")


def check(run: Run, db: Database, received: dict[str, float], expected: int) -> None:
    """Nothing lost: what the users were told is what the database and the sink hold."""
    with db.transaction() as conn:
        tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        known = conn.execute(
            "SELECT count(*) FROM tickets WHERE pid = ANY(%s)", (run.pids,)
        ).fetchone()[0]
        replies = conn.execute(
            "SELECT count(*) FROM ticket_messages WHERE author = 'STAFF'"
        ).fetchone()[0]
        sent = conn.execute("SELECT count(*) FROM email_outbox WHERE status = 'SENT'").fetchone()[0]
        unsent = conn.execute(
            "SELECT count(*) FROM email_outbox WHERE status <> 'SENT'"
        ).fetchone()[0]
    problems = []
    if run.errors:
        problems.append(f"{len(run.errors)} error answers")
    if not (tickets == known == len(run.pids)):
        problems.append(f"tickets: told {len(run.pids)}, found {known} of them, {tickets} in all")
    if replies != run.replies:
        problems.append(f"replies: told {run.replies}, stored {replies}")
    if not (sent == expected == len(received)) or unsent:
        problems.append(
            f"emails: expected {expected}, SENT {sent}, not sent {unsent}, at the sink "
            f"{len(received)} distinct"
        )
    print(
        f"\n  afterwards: {tickets:,} tickets, {replies:,} replies, {sent:,} emails SENT, "
        f"{len(received):,} distinct Message-IDs at the sink (expected {expected:,})"
    )
    if problems:
        raise SystemExit("LOST OR WRONG: " + "; ".join(problems))
    print("  nothing lost: every ticket, reply and email accounted for")


if __name__ == "__main__":
    sys.exit(main())
