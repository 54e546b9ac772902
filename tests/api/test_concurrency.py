"""Concurrent ticket creation over real HTTP (gunicorn): distinct, gapless PIDs."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import UTC, datetime


def test_32_concurrent_http_creations_get_32_gapless_pids(live_server, db):
    results: list[tuple[int, dict]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(32)

    def create(n: int) -> None:
        body = json.dumps(
            {
                "name": f"Customer {n}",
                "email": f"c{n}@example.org",
                "subject": f"Request {n}",
                "body": "Please help.",
            }
        ).encode()
        request = urllib.request.Request(
            f"{live_server}/api/tickets", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            start.wait()
            with urllib.request.urlopen(request, timeout=30) as resp:
                results.append((resp.status, json.loads(resp.read())))
        except BaseException as ex:
            failures.append(ex)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert [status for status, _ in results] == [201] * 32
    period = f"{datetime.now(UTC):%Y%m}"
    pids = sorted(body["ticket"]["pid"] for _, body in results)
    assert pids == [f"{period}-{n:05d}" for n in range(1, 33)]
    with db.transaction() as conn:
        created = conn.execute(
            "SELECT count(*), count(DISTINCT ticket_id) FROM ticket_events WHERE type = 'CREATED'"
        ).fetchone()
        emails = conn.execute("SELECT count(*) FROM email_outbox").fetchone()
    assert created == (32, 32)
    assert emails == (32,)
