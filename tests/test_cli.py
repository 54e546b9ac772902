"""The `supportdesk` command: create-admin and migrate, run as a user runs them."""

from __future__ import annotations

import bcrypt
import pytest

from supportdesk.dev.embedded import free_port


def _admin(db, email):
    with db.transaction() as conn:
        return conn.execute(
            "SELECT name, role, is_active, password_hash FROM users WHERE email = %s", (email,)
        ).fetchone()


def test_create_admin_with_flags(run_cli, db):
    done = run_cli(
        "create-admin",
        "--email",
        "Ana@Example.com",
        "--name",
        "Ana",
        "--password",
        "a long admin password",
    )
    assert done.returncode == 0, done.stderr
    assert "created ADMIN ana@example.com" in done.stdout
    name, role, active, password_hash = _admin(db, "ana@example.com")
    assert (name, role, active) == ("Ana", "ADMIN", True)
    assert bcrypt.checkpw(b"a long admin password", password_hash.encode())


def test_create_admin_from_environment(run_cli, db):
    done = run_cli(
        "create-admin",
        ADMIN_EMAIL="env@example.com",
        ADMIN_NAME="Env",
        ADMIN_PASSWORD="a long admin password",
    )
    assert done.returncode == 0, done.stderr
    assert _admin(db, "env@example.com")[1] == "ADMIN"


def test_create_admin_fails_clearly_when_the_email_exists(run_cli):
    args = (
        "create-admin",
        "--email",
        "ana@example.com",
        "--name",
        "Ana",
        "--password",
        "a long admin password",
    )
    assert run_cli(*args).returncode == 0
    again = run_cli(*args)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_create_admin_refuses_a_weak_password(run_cli, db):
    done = run_cli("create-admin", "--email", "ana@example.com", "--name", "Ana", "--password", "x")
    assert done.returncode == 1
    assert "password: Use at least 10 characters." in done.stderr
    assert _admin(db, "ana@example.com") is None


def test_create_admin_without_a_password_and_no_terminal_says_what_is_missing(run_cli):
    done = run_cli("create-admin", "--email", "ana@example.com", "--name", "Ana")
    assert done.returncode != 0
    assert "missing password" in done.stderr


def test_migrate_twice_is_a_no_op(run_cli):
    done = run_cli("migrate")
    assert done.returncode == 0, done.stderr
    assert "database is up to date" in done.stdout


def test_web_serves_two_requests_at_a_time_per_worker_unless_told():
    """supportdesk.web.server explains the default (threads share a GIL with the thread that
    holds the ticket-number lock; one thread would wait on a silent client); --threads sets it."""
    from supportdesk.cli import build_parser
    from supportdesk.web.server import GunicornServer, gunicorn_options

    cases = (
        (["web"], "gthread", 2),
        (["web", "--threads", "3"], "gthread", 3),
    )
    for argv, worker_class, threads in cases:
        args = build_parser().parse_args(argv)
        options = gunicorn_options(args.host, args.port, args.workers, args.threads)
        server = GunicornServer(options)  # gunicorn's own reading of them
        assert (server.cfg.worker_class_str, server.cfg.threads) == (worker_class, threads)
        assert server.cfg.workers == 2


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_web_refuses_fewer_than_one_worker_or_thread(run_cli, value):
    for option in ("--workers", "--threads"):
        done = run_cli("web", option, value)
        assert done.returncode == 2
        assert f"{option}: must be a whole number from 1" in done.stderr
        assert "Traceback" not in done.stderr


def _stale_resolved(db) -> dict:
    from tests.factories import make_ticket

    with db.transaction() as conn:
        ticket = make_ticket(conn, status="RESOLVED", subject="Fixed long ago")
        conn.execute(
            "UPDATE tickets SET updated_at = now() - interval '8 days' WHERE id = %s",
            (ticket["id"],),
        )
    return ticket


def _status_and_notices(db, ticket_id: int) -> tuple[str, int]:
    with db.transaction() as conn:
        status = conn.execute(
            "SELECT status::text FROM tickets WHERE id = %s", (ticket_id,)
        ).fetchone()[0]
        notices = conn.execute(
            "SELECT count(*) FROM email_outbox WHERE kind = 'CLOSE_NOTICE' AND ticket_id = %s",
            (ticket_id,),
        ).fetchone()[0]
    return status, notices


def test_scheduler_once_runs_every_job_and_exits(run_cli, db, redis_url):
    ticket = _stale_resolved(db)
    done = run_cli("scheduler", "--once", REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr
    assert "auto_close: 1 changed" in done.stdout
    assert "waiting_until: 0 changed" in done.stdout
    assert _status_and_notices(db, ticket["id"]) == ("CLOSED", 1)
    again = run_cli("scheduler", "--once", REDIS_URL=redis_url)
    assert "auto_close: 0 changed" in again.stdout
    assert _status_and_notices(db, ticket["id"]) == ("CLOSED", 1)


def test_scheduler_once_says_when_another_host_holds_the_lock(run_cli, db, redis_url, database_url):
    import psycopg

    from supportdesk.worker.scheduler import LOCK_KEY, LOCK_NAMESPACE

    ticket = _stale_resolved(db)
    with psycopg.connect(database_url, autocommit=True) as other_host:
        other_host.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, LOCK_KEY))
        done = run_cli("scheduler", "--once", REDIS_URL=redis_url)
    assert done.returncode == 0, done.stderr
    assert "another host holds the scheduler lock" in done.stdout
    assert _status_and_notices(db, ticket["id"]) == ("RESOLVED", 0)


def test_scheduler_with_auto_close_after_zero_closes_nothing(run_cli, db, redis_url):
    ticket = _stale_resolved(db)
    done = run_cli("scheduler", "--once", REDIS_URL=redis_url, AUTO_CLOSE_AFTER="0")
    assert done.returncode == 0, done.stderr
    assert "auto_close: 0 changed" in done.stdout
    assert _status_and_notices(db, ticket["id"]) == ("RESOLVED", 0)


@pytest.mark.parametrize("command", [("migrate",), ("scheduler", "--once")])
def test_an_unreachable_database_is_one_line_not_a_traceback(run_cli, command):
    done = run_cli(*command, DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = [each for each in done.stderr.splitlines() if each.startswith("supportdesk:")]
    assert line.startswith("supportdesk: cannot reach the database: ")
    assert "127.0.0.1" in line
