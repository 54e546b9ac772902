"""Ticket numbers: YYYYMM-NNNNN, gapless per UTC month, unique under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from supportdesk.core.vocabulary import is_pid
from supportdesk.tickets.pids import format_pid, pid_period
from tests.factories import make_ticket

NOV = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("number", "pid"),
    [
        (1, "202611-00001"),
        (42, "202611-00042"),
        (99_999, "202611-99999"),
        (100_000, "202611-100000"),
    ],
)
def test_pid_format(number, pid):
    assert format_pid("202611", number) == pid
    assert is_pid(pid)  # what we write is what every reader of a PID recognises


def test_period_is_the_utc_month():
    # 23:30 on Nov 30 in UTC-5 is already December in UTC.
    late_evening = datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert pid_period(late_evening) == "202612"


def test_numbers_restart_each_month(db):
    pids = []
    for moment in (NOV, NOV, DEC, NOV, DEC):
        with db.transaction() as conn:
            pids.append(make_ticket(conn, now=moment)["pid"])
    assert pids == ["202611-00001", "202611-00002", "202612-00001", "202611-00003", "202612-00002"]


def test_rolled_back_creation_does_not_burn_a_number(db):
    class Abandon(Exception):
        pass

    with db.transaction() as conn:
        assert make_ticket(conn, now=NOV)["pid"] == "202611-00001"
    taken = []

    def create_then_abandon():
        with db.transaction() as conn:
            taken.append(make_ticket(conn, now=NOV)["pid"])
            raise Abandon

    with pytest.raises(Abandon):
        create_then_abandon()
    assert taken == ["202611-00002"]
    with db.transaction() as conn:
        assert make_ticket(conn, now=NOV)["pid"] == "202611-00002"
        count = conn.execute("SELECT count(*) FROM tickets").fetchone()
    assert count == (2,)


def test_a_failing_insert_gives_its_number_back(db):
    with pytest.raises(Exception, match="tickets_subject_not_blank"), db.transaction() as conn:
        make_ticket(conn, now=NOV, subject=" ")
    with db.transaction() as conn:
        assert make_ticket(conn, now=NOV)["pid"] == "202611-00001"


def test_parallel_creators_get_distinct_gapless_numbers(db):
    threads_count, per_thread = 16, 200
    results: list[list[str]] = [[] for _ in range(threads_count)]
    failures: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def create(slot: int) -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                with db.transaction() as conn:
                    results[slot].append(make_ticket(conn, now=NOV)["pid"])
        except BaseException as ex:
            failures.append(ex)

    workers = [threading.Thread(target=create, args=(i,)) for i in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert failures == []
    pids = [pid for chunk in results for pid in chunk]
    assert len(pids) == len(set(pids)) == threads_count * per_thread
    numbers = sorted(int(pid.split("-")[1]) for pid in pids)
    assert numbers == list(range(1, threads_count * per_thread + 1))
    with db.transaction() as conn:
        stored = conn.execute("SELECT count(DISTINCT pid) FROM tickets").fetchone()
        counter = conn.execute("SELECT last_value FROM pid_counters WHERE period = '202611'")
        assert counter.fetchone() == (threads_count * per_thread,)
    assert stored == (threads_count * per_thread,)
