"""Database.transaction nests as one unit of work: an outer transaction (a mailbox fetch that
advances its UID with the message it stores) commits or rolls back what its services did."""

from __future__ import annotations

import pytest

from supportdesk.core.db import Database


class Boom(Exception):
    pass


def _count(db: Database) -> int:
    with db.transaction() as conn:
        return conn.execute("SELECT count(*) AS n FROM pid_counters").fetchone()[0]


def _insert_and_fail(db: Database) -> None:
    with db.transaction() as inner:
        inner.execute("INSERT INTO pid_counters (period, last_value) VALUES ('202602', 1)")
        raise Boom


def test_an_inner_transaction_joins_the_outer_one(db: Database) -> None:
    with db.transaction() as outer:
        pid = outer.execute("SELECT pg_backend_pid() AS p").fetchone()[0]
        with db.transaction() as inner:
            assert inner is outer
            assert inner.execute("SELECT pg_backend_pid() AS p").fetchone()[0] == pid
            inner.execute("INSERT INTO pid_counters (period, last_value) VALUES ('202601', 1)")
    assert _count(db) == 1


def test_the_outer_rollback_undoes_what_the_inner_one_committed(db: Database) -> None:
    def fails() -> None:
        with db.transaction():
            with db.transaction() as inner:
                inner.execute("INSERT INTO pid_counters (period, last_value) VALUES ('202601', 1)")
            raise Boom

    with pytest.raises(Boom):
        fails()
    assert _count(db) == 0


def test_an_inner_failure_rolls_back_to_its_savepoint_only(db: Database) -> None:
    with db.transaction() as outer:
        outer.execute("INSERT INTO pid_counters (period, last_value) VALUES ('202601', 1)")
        with pytest.raises(Boom):
            _insert_and_fail(db)
    assert _count(db) == 1


def test_after_commit_waits_for_the_outermost_commit(db: Database) -> None:
    calls: list[str] = []
    db.after_commit(calls.append, "alone")
    assert calls == ["alone"]
    with db.transaction():
        with db.transaction():
            db.after_commit(calls.append, "inner")
        assert calls == ["alone"]
    assert calls == ["alone", "inner"]


def test_after_commit_is_dropped_on_rollback(db: Database) -> None:
    calls: list[str] = []

    def fails() -> None:
        with db.transaction():
            db.after_commit(calls.append, "never")
            raise Boom

    with pytest.raises(Boom):
        fails()
    assert calls == []
    db.after_commit(calls.append, "later")  # the context is clean again
    assert calls == ["later"]
