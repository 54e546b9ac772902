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
    # Gapless within each month (32 creations may straddle a month's turn).
    by_month: dict[str, list[int]] = {}
    for _, body in results:
        period, number = body["ticket"]["pid"].split("-")
        by_month.setdefault(period, []).append(int(number))
    assert sum(len(numbers) for numbers in by_month.values()) == 32
    for numbers in by_month.values():
        assert sorted(numbers) == list(range(1, len(numbers) + 1))
    with db.transaction() as conn:
        created = conn.execute(
            "SELECT count(*), count(DISTINCT ticket_id) FROM ticket_events WHERE type = 'CREATED'"
        ).fetchone()
        emails = conn.execute("SELECT count(*) FROM email_outbox").fetchone()
    assert created == (32, 32)
    assert emails == (32,)


def test_an_event_is_timed_after_the_ticket_lock_is_taken(client, db, make_staff, bearer):
    """Issue 10, finding 7: the clock was read before the row lock, so a reply that waited
    for the lock was timed before changes that committed while it waited."""
    import time

    import psycopg

    headers = bearer(make_staff("ADMIN"))
    ticket = client.post_json(
        "/api/tickets",
        {"name": "Ann", "email": "ann@example.org", "subject": "Hi", "body": "Hello"},
        status=201,
    ).json["ticket"]
    done: list[int] = []
    with psycopg.connect(db.pool.conninfo) as blocker:
        blocker.execute("SELECT 1 FROM tickets WHERE pid = %s FOR UPDATE", (ticket["pid"],))
        reply = threading.Thread(
            target=lambda: done.append(
                client.post_json(
                    f"/api/tickets/{ticket['pid']}/messages", {"body": "Hi"}, headers=headers
                ).status_int
            )
        )
        reply.start()
        time.sleep(0.5)  # the reply is waiting for the lock
        released_at = datetime.now(UTC)
        blocker.commit()
    reply.join(10)
    assert done == [201]
    with db.transaction() as conn:
        [created_at] = conn.execute(
            "SELECT created_at FROM ticket_events WHERE type = 'MESSAGE_ADDED'"
        ).fetchone()
    assert created_at >= released_at


def test_the_timeline_is_in_the_order_events_were_written(settings, db, make_staff, bearer):
    """Even when the clock says otherwise (two hosts a little apart, a clock stepped back)."""
    from datetime import timedelta

    import webtest

    from supportdesk.core.redis_client import make_redis
    from supportdesk.web.app import create_app

    noon = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    ticks = iter(noon - timedelta(seconds=n) for n in range(99))  # a clock running backwards
    app = create_app(settings, db=db, redis_client=make_redis(settings), clock=lambda: next(ticks))
    client = webtest.TestApp(app)
    headers = bearer(make_staff("ADMIN"))
    pid = client.post_json(
        "/api/tickets",
        {"name": "Ann", "email": "ann@example.org", "subject": "Hi", "body": "Hello"},
        headers=headers,
        status=201,
    ).json["ticket"]["pid"]
    client.patch_json(f"/api/tickets/{pid}", {"priority": "HIGH"}, headers=headers)
    client.patch_json(f"/api/tickets/{pid}", {"priority": "URGENT"}, headers=headers)
    events = client.get(f"/api/tickets/{pid}/events", headers=headers).json["items"]
    assert [e["type"] for e in events] == ["CREATED", "PRIORITY_CHANGED", "PRIORITY_CHANGED"]
    assert [e["data"].get("to") for e in events[1:]] == ["HIGH", "URGENT"]


def test_a_creation_in_progress_does_not_hold_up_the_next(client, db, database_url):
    """DESIGN.md section 4: the PID counter row is taken last, so its lock is held only for
    the end of a creation. A first creation made slow inside its transaction (a test-only
    trigger sleeps on its CREATED event, before the counter) must not hold up a second."""
    import time

    import psycopg

    with psycopg.connect(database_url) as conn:  # the owner: the app may not add triggers
        conn.execute(
            "CREATE FUNCTION test_slow_creation() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.data -> 'requester' ->> 'name' = 'Slow' THEN "
            "PERFORM pg_sleep(3); END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER test_slow_creation BEFORE INSERT ON ticket_events "
            "FOR EACH ROW EXECUTE FUNCTION test_slow_creation()"
        )
    try:
        new = {"email": "a@example.org", "subject": "Hi", "body": "Hello"}
        slow: list[str] = []
        first = threading.Thread(
            target=lambda: slow.append(
                client.post_json("/api/tickets", new | {"name": "Slow"}).json["ticket"]["pid"]
            )
        )
        first.start()
        time.sleep(0.4)  # the first is inside its transaction, asleep
        started = time.monotonic()
        fast = client.post_json("/api/tickets", new | {"name": "Fast"}).json["ticket"]["pid"]
        waited = time.monotonic() - started
        first.join(10)
        assert waited < 1.5, f"the second creation waited {waited:.2f}s for the first"
        # The second took the counter first: numbers follow commits, not arrivals.
        assert fast.endswith("-00001")
        assert slow[0].endswith("-00002")
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("DROP TRIGGER test_slow_creation ON ticket_events")
            conn.execute("DROP FUNCTION test_slow_creation()")
