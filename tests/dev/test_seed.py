"""`supportdesk seed`: demo tickets with correct PIDs, a conversation and one event each."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import bcrypt
import psycopg
import pytest

from supportdesk.core.db import queries
from supportdesk.dev.seed import (
    COMMON_BODY_WORD,
    MESSAGES_PER_TICKET,
    RARE_BODY_TICKETS,
    RARE_BODY_WORD,
    TicketFactory,
    plan_months,
    seed_tickets,
)
from supportdesk.tickets.pids import pid_period, take_next_pid
from tests.factories import make_ticket

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def seed(db, settings, count, **over):
    options = {"seed": 42, "bcrypt_rounds": settings.bcrypt_rounds, "progress": False, "now": NOW}
    return seed_tickets(db, count, **options | over)


def rows(db, sql, *params):
    with db.transaction() as conn:
        return conn.execute(sql, params).fetchall()


def numbers_by_month(db) -> dict[str, list[int]]:
    """Each month's PID numbers, in created_at order, checking the prefix is that month."""
    months: dict[str, list[int]] = defaultdict(list)
    for pid, created_at in rows(db, "SELECT pid, created_at FROM tickets ORDER BY created_at, id"):
        period, number = pid.split("-")
        assert period == pid_period(created_at), pid
        months[period].append(int(number))
    return months


def counters(db) -> dict[str, int]:
    return dict(rows(db, "SELECT period, last_value FROM pid_counters"))


def test_every_seeded_ticket_has_its_conversation_and_one_created_event(db, settings):
    result = seed(db, settings, 3000)

    assert result.tickets == 3000
    [(tickets, messages, events, outbox)] = rows(
        db,
        "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM ticket_messages),"
        " (SELECT count(*) FROM ticket_events), (SELECT count(*) FROM email_outbox)",
    )
    assert (tickets, messages, events, outbox) == (3000, 3000 * MESSAGES_PER_TICKET, 3000, 0)
    [(odd,)] = rows(
        db,
        """SELECT count(*) FROM tickets t
           WHERE (SELECT count(*) FROM ticket_messages m
                  WHERE m.ticket_id = t.id AND m.author = 'CUSTOMER'
                    AND m.author_email = t.requester_email AND m.created_at = t.created_at) < 1
              OR (SELECT array_agg(m.author::text ORDER BY m.created_at, m.id)
                  FROM ticket_messages m WHERE m.ticket_id = t.id)
                 <> ARRAY['CUSTOMER', 'STAFF', 'CUSTOMER', 'STAFF']
              OR (SELECT max(m.created_at) FROM ticket_messages m WHERE m.ticket_id = t.id)
                 > t.updated_at
              OR (SELECT count(*) FROM ticket_events e
                  WHERE e.ticket_id = t.id AND e.type = 'CREATED'
                    AND e.data->'requester'->>'email' = t.requester_email) <> 1""",
    )
    assert odd == 0
    # Staff write as the ticket's assignee, or as one of the staff when there is none.
    [(strangers, internal)] = rows(
        db,
        """SELECT count(*) FILTER (WHERE t.assigned_to IS NOT NULL
                                   AND m.author_user_id <> t.assigned_to),
                  avg((m.visibility = 'INTERNAL')::int)
           FROM ticket_messages m JOIN tickets t ON t.id = m.ticket_id
           WHERE m.author = 'STAFF'""",
    )
    assert strangers == 0
    assert 0.05 < internal < 0.25


def test_the_bodies_hold_a_common_and_a_rare_word_the_subjects_never_do(db, settings):
    seed(db, settings, 3000)

    def tickets_with(word: str) -> tuple[int, int]:
        [(in_bodies, in_subjects)] = rows(
            db,
            """SELECT (SELECT count(DISTINCT ticket_id) FROM ticket_messages
                       WHERE search_vector @@ plainto_tsquery('simple', %s)),
                      (SELECT count(*) FROM tickets WHERE search_text LIKE %s)""",
            word,
            f"%{word}%",
        )
        return in_bodies, in_subjects

    common, common_subjects = tickets_with(COMMON_BODY_WORD)
    rare, rare_subjects = tickets_with(RARE_BODY_WORD)
    assert 0.3 * 3000 < common < 0.7 * 3000
    assert RARE_BODY_TICKETS - 1 <= rare <= RARE_BODY_TICKETS + 1
    assert common_subjects == rare_subjects == 0


def test_pids_are_unique_gapless_per_month_and_follow_created_at(db, settings):
    result = seed(db, settings, 3000)

    months = numbers_by_month(db)
    assert len(months) == 19  # 18 months back from mid-March: a partial month at each end
    for period, numbers in months.items():
        assert numbers == list(range(1, len(numbers) + 1)), period
    assert counters(db) == {period: len(numbers) for period, numbers in months.items()}
    assert result.first_pid == f"{min(months)}-00001"
    assert result.last_pid == f"{max(months)}-{len(months[max(months)]):05d}"
    [(oldest, newest)] = rows(db, "SELECT min(created_at), max(created_at) FROM tickets")
    assert NOW - timedelta(days=18 * 31) < oldest < newest < NOW


def test_seeding_continues_the_numbering_of_existing_tickets(db, settings):
    with db.transaction() as conn:
        earlier = make_ticket(conn, now=NOW - timedelta(hours=1))
    seed(db, settings, 1000)
    seed(db, settings, 500, seed=7)

    months = numbers_by_month(db)
    current = pid_period(NOW)
    assert earlier["pid"] == f"{current}-00001"
    for period, numbers in months.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), period
    assert counters(db) == {period: len(numbers) for period, numbers in months.items()}
    assert sum(len(n) for n in months.values()) == 1501


def test_a_ticket_created_after_seeding_takes_the_next_number(db, settings):
    seed(db, settings, 1000)
    last = counters(db)[pid_period(NOW)]

    with db.transaction() as conn:
        pid = take_next_pid(conn, NOW)
        make_ticket(conn, now=NOW, pid=pid)

    assert pid == f"{pid_period(NOW)}-{last + 1:05d}"


def test_a_failed_seed_leaves_nothing_behind(db, settings):
    # A ticket whose number its month's counter does not know: the seed collides with it.
    with db.transaction() as conn:
        make_ticket(conn, now=NOW, pid=f"{pid_period(NOW)}-00001")

    with pytest.raises(psycopg.errors.UniqueViolation):
        seed(db, settings, 500)

    assert counters(db) == {}
    assert rows(db, "SELECT count(*) FROM tickets") == [(1,)]
    assert rows(db, "SELECT count(*) FROM users") == [(0,)]


def test_seeded_messages_skip_tickets_that_others_commit_meanwhile(db, database_url):
    with db.transaction() as seeding:
        after_id = queries.max_ticket_id(seeding)
        with psycopg.connect(database_url) as other, other.transaction():
            make_ticket(other, now=NOW - timedelta(days=40))  # committed, id above after_id
        make_ticket(seeding, now=NOW)

        # No staff to write the replies: the customer's two messages.
        seeded = queries.insert_seeded_messages(seeding, after_id=after_id, staff=[], rare_every=1)
        assert seeded == 2
        assert queries.insert_seeded_events(seeding, after_id=after_id) == 1


def test_agents_are_created_up_to_the_wanted_number_of_active_staff(db, settings, make_staff):
    make_staff("ADMIN")
    make_staff("AGENT", is_active=False)
    result = seed(db, settings, 2000, agents=4)

    assert (result.assignees, result.agents_created) == (4, 3)
    created = rows(db, "SELECT password_hash FROM users WHERE role = 'AGENT' AND is_active")
    assert len(created) == 3
    for (password_hash,) in created:
        assert password_hash.startswith(f"$2b${settings.bcrypt_rounds:02d}$")
        assert not bcrypt.checkpw(b"correct horse battery", password_hash.encode())
    assignees = dict(rows(db, "SELECT assigned_to, count(*) FROM tickets GROUP BY 1"))
    active = {uid for (uid,) in rows(db, "SELECT id FROM users WHERE is_active")}
    assert set(assignees) - {None} == active
    assert 0.05 < assignees[None] / 2000 < 0.3  # a share waits for triage

    again = seed(db, settings, 10, agents=4)
    assert again.agents_created == 0


def test_statuses_fit_the_age_of_the_ticket(db, settings):
    seed(db, settings, 3000)
    by_age = dict(
        rows(
            db,
            """SELECT created_at > %s, avg((status IN ('RESOLVED', 'CLOSED'))::int)
               FROM tickets GROUP BY 1""",
            NOW - timedelta(days=60),
        )
    )
    assert by_age[False] > 0.95  # older than two months: nearly all done
    assert by_age[True] < 0.75
    [(recent_open,)] = rows(
        db,
        "SELECT avg((status IN ('OPEN', 'IN_PROGRESS', 'WAITING'))::int) FROM tickets"
        " WHERE created_at > %s",
        NOW - timedelta(days=2),
    )
    assert recent_open > 0.6
    [(normal,)] = rows(db, "SELECT avg((priority = 'NORMAL')::int) FROM tickets")
    assert 0.55 < normal < 0.75


def test_the_same_random_seed_gives_the_same_tickets():
    plan = plan_months(300, 18, NOW)
    assert sum(month.count for month in plan) == 300

    def tickets(seed: int) -> list[tuple]:
        factory = TicketFactory(random.Random(seed), NOW, [1, 2, 3], 300)
        return [row for month in plan for row in factory.rows(month, 1)]

    assert tickets(5) == tickets(5)
    assert tickets(5) != tickets(6)


def test_the_seed_command_shows_progress_and_seeds(run_cli, db):
    done = run_cli("seed", "--tickets", "300", "--agents", "2", "--seed", "1")

    assert done.returncode == 0, done.stderr
    assert "seeded 300 tickets" in done.stdout
    assert "(2 AGENT accounts created)" in done.stdout
    assert "300/300" in done.stderr  # the progress bar
    assert rows(db, "SELECT count(*) FROM tickets") == [(300,)]

    quiet = run_cli("seed", "--tickets", "5", "--months", "1", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert rows(db, "SELECT count(*) FROM ticket_messages") == [(305 * MESSAGES_PER_TICKET,)]


def test_the_seed_command_refuses_a_bad_count(run_cli):
    done = run_cli("seed", "--tickets", "0")

    assert done.returncode == 2
    assert "--tickets: must be a whole number from 1" in done.stderr
