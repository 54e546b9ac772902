"""Bulk-closing 100 tickets (issue 22: <= 300 ms), next to its raw baseline in the same run.

On a table of `--tickets` seeded tickets (10,000 by default: the cost is per ticket changed,
not per ticket stored, as each one is found by its PID's unique index), each round closes
100 OPEN tickets three ways, each on tickets of its own:

- HTTP: `POST /api/tickets/bulk {action: status, value: CLOSED}` to `supportdesk web`, as an
  ADMIN with a Bearer token (the target is on this number);
- service: BulkService.run in-process (the same work without HTTP and JSON);
- raw: one transaction of two statements, an UPDATE of the 100 rows and an INSERT of their
  100 STATUS_CHANGED events: the least the database must do for the same result.

Medians and p95 of each way, and the ratio of the HTTP median to the raw one.

Run: `make bench-bulk` (`BENCH_ARGS="--rounds 30"`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import time
from typing import Any

from bench.common import bench_settings, describe, server_shape, services, web_server
from bench.tickets import ADMIN_EMAIL, ADMIN_PASSWORD, login, request
from supportdesk.accounts.staff import create_admin
from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.dev.seed import seed_tickets
from supportdesk.tickets.access import with_reach
from supportdesk.tickets.bulk import BulkAction
from supportdesk.web.services import build_services

TARGET_SECONDS = 0.300
BATCH = 100

RAW_CLOSE = """
WITH closed AS (
    UPDATE tickets t SET status = 'CLOSED', updated_at = now()
    FROM (SELECT id, status FROM tickets WHERE pid = ANY(%(pids)s) FOR UPDATE) before
    WHERE t.id = before.id
    RETURNING t.id, before.status AS was
)
INSERT INTO ticket_events (ticket_id, type, actor_id, data, created_at)
SELECT id, 'STATUS_CHANGED', %(actor)s, jsonb_build_object('from', was, 'to', 'CLOSED'), now()
FROM closed
"""


def main() -> None:
    args = parse_args()
    print(f"bench-bulk: {os.cpu_count()} CPUs, {server_shape(args.workers)}")
    with services() as (database_url, redis_url):
        settings = bench_settings(database_url, redis_url)
        db = Database(settings).open(wait=True)
        try:
            admin = create_admin(db, ADMIN_EMAIL, "Bench Admin", ADMIN_PASSWORD, 12)
            started = time.perf_counter()
            seed_tickets(db, args.tickets, seed=22, progress=False, bcrypt_rounds=4)
            print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - started:.1f} s")
            needed = 3 * BATCH * (args.rounds + 1)
            if args.tickets < needed:
                raise SystemExit(f"{args.rounds} rounds close {needed} tickets: seed more")
            open_pids = _reopened(db, needed)
            batches = iter([open_pids[i : i + BATCH] for i in range(0, needed, BATCH)])
            with web_server(database_url, redis_url, args.workers) as server:
                run(db, settings, server.port, admin, batches, args.rounds)
        finally:
            db.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.bulk", description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=10_000, help="tickets to seed")
    parser.add_argument("--rounds", type=int, default=15, help="batches of 100 per way")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    return parser.parse_args()


def _reopened(db: Database, count: int) -> list[str]:
    """`count` tickets, spread over the table, made OPEN (the seed closes most of them)."""
    with db.transaction() as conn:
        rows = conn.execute(
            "UPDATE tickets SET status = 'OPEN', waiting_until = NULL WHERE id IN "
            "(SELECT id FROM tickets ORDER BY md5(pid) LIMIT %s) RETURNING pid",
            (count,),
        ).fetchall()
        conn.execute("ANALYZE tickets")
    return sorted(pid for (pid,) in rows)


def run(db: Database, settings: Any, port: int, admin: dict[str, Any], batches, rounds: int):
    token = login(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    bulk = build_services(settings, db, make_redis(settings)).bulk
    actor = with_reach(admin, agents_see_unassigned=False)
    times: dict[str, list[float]] = {"http": [], "service": [], "raw": []}

    def over_http(pids: list[str]) -> None:
        body = {"pids": pids, "action": "status", "value": "CLOSED"}
        status, raw = request(
            conn, "POST", "/api/tickets/bulk", body, {"Authorization": f"Bearer {token}"}
        )
        results = json.loads(raw)["results"] if status == 200 else []
        if [r["outcome"] for r in results] != ["changed"] * len(pids):
            raise SystemExit(f"bulk over HTTP: {status} {raw[:300]!r}")

    def in_process(pids: list[str]) -> None:
        results = bulk.run(actor, BulkAction(tuple(pids), "status", "CLOSED"))
        assert all(r["outcome"] == "changed" for r in results)

    def raw_sql(pids: list[str]) -> None:
        with db.transaction() as c:
            c.execute(RAW_CLOSE, {"pids": pids, "actor": admin["id"]})

    ways = {"http": over_http, "service": in_process, "raw": raw_sql}
    for call in ways.values():  # one warm-up batch each (connections, plans)
        call(next(batches))
    for _ in range(rounds):  # alternated, so that a busy moment hits every way alike
        for way, call in ways.items():
            pids = next(batches)
            started = time.perf_counter()
            call(pids)
            times[way].append(time.perf_counter() - started)
    conn.close()
    for way in ways:
        print(f"close {BATCH} tickets, {way:8} {describe(times[way])}")
    http_median, raw_median = (statistics.median(times[w]) for w in ("http", "raw"))
    verdict = "ok" if http_median <= TARGET_SECONDS else "TOO SLOW"
    print(
        f"HTTP median {http_median * 1000:.1f} ms (target <= {TARGET_SECONDS * 1000:.0f} ms: "
        f"{verdict}); HTTP / raw = {http_median / raw_median:.1f}x"
    )


if __name__ == "__main__":
    main()
