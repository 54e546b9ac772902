"""The `supportdesk` command: one subcommand per process and task (DESIGN.md section 8)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from supportdesk.core.config import PROJECT_ROOT, ConfigError, Settings
from supportdesk.dev.run import (
    DEV_DATABASE,
    DEV_INBOUND_PORT,
    DEV_PG_PORT,
    DEV_REDIS_PORT,
    DEV_SMTP_PORT,
    VAR_DIR,
    dev_environment,
    seed_dev_admin,
    wait_for_services,
)

Command = Callable[[argparse.Namespace], int]


def _settings() -> Settings:
    return Settings.from_env()


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate as the owner (MIGRATION_DATABASE_URL, else DATABASE_URL); when the two name
    different roles, grant the app's role what it needs (migrate.grant_app_role)."""
    from supportdesk.core.migrate import AppRoleMissing, apply_migrations, grant_app_role, role_of

    settings = _settings()
    if not settings.database_url:
        raise ConfigError({"DATABASE_URL": "is required to migrate"})
    owner_url = settings.migration_database_url or settings.database_url
    applied = apply_migrations(owner_url)
    print(
        f"applied {len(applied)} migration(s): {', '.join(applied)}"
        if applied
        else "database is up to date"
    )
    app_role = role_of(settings.database_url)
    if settings.migration_database_url and app_role:
        try:
            # Outside production the role is made if missing (local servers trust local
            # logins); in production it is created by whoever holds its password.
            restricted = grant_app_role(
                owner_url, app_role, create=settings.environment != "production"
            )
        except AppRoleMissing as missing:
            print(f"error: {missing}", file=sys.stderr)
            return 2
        if restricted:
            print(f"the app's role {app_role} may read and write rows; ticket_events: append only")
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    """The first ADMIN: from flags, else ADMIN_EMAIL / ADMIN_NAME / ADMIN_PASSWORD, else asked."""
    from supportdesk.accounts.staff import create_admin
    from supportdesk.core.db import Database
    from supportdesk.core.errors import AppError

    settings = _settings()
    email = args.email or os.environ.get("ADMIN_EMAIL") or _ask("Email: ")
    name = args.name or os.environ.get("ADMIN_NAME") or _ask("Name: ")
    password = args.password or os.environ.get("ADMIN_PASSWORD") or _ask_password()
    db = Database(settings.replace(db_pool_min_size=0, db_pool_max_size=1)).open()
    try:
        user = create_admin(db, email, name, password, settings.bcrypt_rounds)
    except AppError as error:
        print(f"supportdesk: {error.message}", file=sys.stderr)
        for field, message in error.details.items():
            print(f"  {field}: {message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"created ADMIN {user['email']} (id {user['id']})")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Demo or benchmark tickets; see supportdesk/dev/seed.py."""
    from supportdesk.core.db import Database
    from supportdesk.dev.seed import seed_tickets

    settings = _settings()
    db = Database(settings.replace(db_pool_min_size=0, db_pool_max_size=1)).open()
    try:
        result = seed_tickets(
            db,
            args.tickets,
            agents=args.agents,
            months=args.months,
            seed=args.seed,
            bcrypt_rounds=settings.bcrypt_rounds,
            progress=not args.quiet,
            owner_url=settings.migration_database_url,
        )
    finally:
        db.close()
    took = sum(result.seconds.values())
    print(
        f"seeded {result.tickets:,} tickets ({result.first_pid} .. {result.last_pid}) in "
        f"{took:.1f}s, assigned among {result.assignees} active staff"
        + (f" ({result.agents_created} AGENT accounts created)" if result.agents_created else "")
    )
    return 0


def _ask(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise SystemExit(f"supportdesk: missing {prompt.strip(': ').lower()} (give it as a flag)")
    return input(prompt).strip()


def _ask_password() -> str:
    import getpass

    if not sys.stdin.isatty():
        raise SystemExit("supportdesk: missing password (--password or ADMIN_PASSWORD)")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise SystemExit("supportdesk: the passwords differ")
    return first


def cmd_web(args: argparse.Namespace) -> int:
    from supportdesk.web.server import public_bind_refusal, serve

    settings = _settings()  # fail here, with the whole list of problems, not in each worker
    refusal = public_bind_refusal(args.host, settings.trusted_proxies)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if args.dev:
        wait_for_services(settings, timeout=60)
        cmd_migrate(args)
        seed_dev_admin(settings, Path(os.environ.get("SUPPORTDESK_VAR_DIR", VAR_DIR)))
    serve(args.host, args.port, args.workers, args.threads, reload=args.dev)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from supportdesk.worker.process import run_worker

    settings = _settings()
    if args.dev:
        # The dev set starts everything at once: the schema must exist before the first claim.
        wait_for_services(settings, timeout=60)
        cmd_migrate(args)
    return run_worker(settings, _mailbox_fetchers(settings), _scheduler(settings))


def _scheduler(settings: Settings):
    """The scheduler (DESIGN.md section 12) and its registry of jobs: a name and a function
    that returns how many things it changed. Further jobs (retention, sweeps) go in
    `_scheduler_jobs`. What the jobs need is built at the first run that holds the lock."""
    from supportdesk.core.session_locks import LockSession
    from supportdesk.worker.scheduler import Scheduler

    lock = LockSession(settings.direct_database_url or settings.database_url or "")
    return Scheduler(lock, lambda: _scheduler_jobs(settings), interval=settings.scheduler_seconds)


def _scheduler_jobs(settings: Settings) -> dict[str, Callable[[], int]]:
    from supportdesk.core.db import Database
    from supportdesk.core.redis_client import make_redis
    from supportdesk.files.storage import make_storage
    from supportdesk.mail.outbound.compose import EmailComposer
    from supportdesk.privacy.retention import RetentionPurge, retention_jobs
    from supportdesk.tickets.orphan_files import OrphanSweep
    from supportdesk.tickets.timed import TimedTickets, timed_jobs
    from supportdesk.web.templating import make_templates

    db = Database(settings.replace(db_pool_min_size=0, db_pool_max_size=2), name="scheduler")
    composer = EmailComposer.from_settings(make_templates(auto_reload=False), settings)
    timed = TimedTickets(
        db.open(), make_redis(settings), composer, auto_close_after=settings.auto_close_after
    )
    storage = make_storage(settings)
    retention = RetentionPurge(db, storage, settings.retention_after)
    return {
        **timed_jobs(timed),
        **retention_jobs(retention),
        # Files left without a row by a failed store (DESIGN.md section 13).
        "orphan_files": OrphanSweep(db, storage).run,
    }


def cmd_scheduler(args: argparse.Namespace) -> int:
    """`supportdesk scheduler --once`: every job once, under the same lock as the workers'
    schedulers; when another host holds it, says so and runs nothing (exit code 0)."""
    settings = _settings()
    scheduler = _scheduler(settings)
    try:
        run = scheduler.run_once()
    finally:
        scheduler.lock.close()
    if not run.ran:
        print("another host holds the scheduler lock and is running the jobs: nothing run")
        return 0
    for name, changed in run.changed.items():
        print(f"{name}: {changed} changed")
    for name in run.failed:
        print(f"{name}: failed (see the log)", file=sys.stderr)
    return 1 if run.failed else 0


def _mailbox_fetchers(settings: Settings):
    """The worker's mailbox fetchers (DESIGN.md section 10), storing mail through the same
    inbound service as the web and the SMTP listener. That service, and all it loads, is
    built when the first mailbox is fetched: a worker with no mailbox stays as small as
    before."""
    from supportdesk.core.db import Database
    from supportdesk.mail.inbound.fetchers import RESCAN_SECONDS, MailboxFetchers

    db = Database(settings.replace(db_pool_min_size=1, db_pool_max_size=6), name="fetcher")
    built: dict[str, Any] = {}

    def make_fetcher(mailbox_id: int, stop: threading.Event):
        from supportdesk.core.redis_client import make_redis
        from supportdesk.mail.inbound.fetcher import FetchTimings, MailboxFetcher
        from supportdesk.web.services import build_services

        if not built:  # the fetchers' one thread asks: no race
            built["services"] = build_services(settings, db, make_redis(settings))
        services = built["services"]
        timings = FetchTimings.from_settings(settings)
        return MailboxFetcher(
            mailbox_id,
            db,
            services.inbound,
            services.inbound_parser,
            services.mailbox_login,
            timings=timings,
            stop=stop,
        )

    return MailboxFetchers(
        db.open(),
        settings.direct_database_url or settings.database_url or "",
        make_fetcher,
        rescan=max(0.2, min(RESCAN_SECONDS, settings.imap_poll_seconds)),
        join_seconds=settings.imap_timeout_seconds + 10,
    )


def cmd_smtp_inbound(args: argparse.Namespace) -> int:
    from supportdesk.core.db import Database
    from supportdesk.core.redis_client import make_redis
    from supportdesk.mail.inbound.sender_auth.check import SenderCheck
    from supportdesk.mail.inbound.sender_auth.resolver import DnsResolver
    from supportdesk.mail.inbound.smtp import serve
    from supportdesk.web.services import build_services

    settings = _settings()
    if args.dev:
        wait_for_services(settings, timeout=60)
        cmd_migrate(args)
    db = Database(settings.replace(db_pool_min_size=1, db_pool_max_size=4), name="inbound").open()
    services = build_services(settings, db, make_redis(settings))
    parser = services.inbound_parser
    controller = serve(
        services.inbound,
        parser,
        services.smtp_clients,
        settings.mail_domain,
        args.host,
        args.port,
        sender_check=SenderCheck(DnsResolver(), relays=settings.inbound_smtp_relays),
    )
    print(
        f"inbound SMTP on {args.host}:{args.port}: mail to {settings.support_address} "
        "becomes tickets",
        flush=True,
    )

    def stop() -> None:
        parser.close()  # a parse still running ends now: its sender is asked to retry,
        controller.handler.drain(5)  # and gets that answer (or its 250) before we go
        controller.stop()

    stopped = threading.Event()
    try:
        return _run_until_signalled(stop, stopped.wait)
    finally:
        db.close()


def cmd_dev_mailbox(args: argparse.Namespace) -> int:
    from supportdesk.dev.mailbox import serve

    directory = Path(args.dir)
    controller = serve(directory, args.host, args.port)
    print(f"dev mailbox: SMTP on {args.host}:{args.port}, messages in {directory}", flush=True)
    stopped = threading.Event()
    return _run_until_signalled(controller.stop, stopped.wait)


def _run_until_signalled(stop: Callable[[], None], wait: Callable[[], object]) -> int:
    """Keep a child server in the foreground; SIGTERM/SIGINT stop it cleanly."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    while not stopping.is_set() and waiter.is_alive():
        stopping.wait(0.5)
    stop()
    return 0 if stopping.is_set() else 1


def cmd_embedded_postgres(args: argparse.Namespace) -> int:
    from supportdesk.dev.embedded import EmbeddedPostgres

    data = Path(args.data_dir)
    data.parent.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(data, args.port, log_file=data.parent / "pg.log").start()
    server.create_database(args.database)
    print(
        f"embedded PostgreSQL ready at {server.url(args.database)} (log: {data.parent / 'pg.log'})",
        flush=True,
    )
    assert server.process is not None
    return _run_until_signalled(server.stop, server.process.wait)


def cmd_embedded_redis(args: argparse.Namespace) -> int:
    from supportdesk.dev.embedded import EmbeddedRedis

    server = EmbeddedRedis(Path(args.data_dir), args.port).start()
    print(f"embedded Redis ready at {server.url()}", flush=True)
    assert server.process is not None
    return _run_until_signalled(server.stop, server.process.wait)


def cmd_dev(args: argparse.Namespace) -> int:
    """Everything, through honcho and Procfile.dev; embedded servers where no URL is set."""
    env, processes = dev_environment(
        os.environ,
        Path(args.var_dir).resolve(),
        port=args.port,
        pg_port=args.pg_port,
        redis_port=args.redis_port,
        inbound_port=args.inbound_port,
        smtp_port=args.smtp_port,
    )
    # Procfile.dev runs `supportdesk ...`: make this installation's scripts the ones found.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    honcho = shutil.which("honcho", path=env["PATH"])
    if honcho is None:
        raise SystemExit("honcho is not installed (pip install -e .)")
    print(f"starting {', '.join(processes)} on http://127.0.0.1:{args.port}", flush=True)
    argv = [
        honcho,
        "--procfile",
        str(PROJECT_ROOT / "Procfile.dev"),
        "--app-root",
        str(PROJECT_ROOT),
        "start",
        *processes,
    ]
    # honcho replaces this process, so Ctrl-C reaches it (and it stops every child) directly.
    os.execve(honcho, argv, env)  # noqa: S606 - a fixed argv, no shell
    return 0  # not reached


def _count(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < low:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} (got {text!r})")
        return int(text)

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supportdesk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply database migrations (idempotent)").set_defaults(
        func=cmd_migrate
    )

    admin = sub.add_parser("create-admin", help="create an ADMIN account")
    admin.add_argument("--email")
    admin.add_argument("--name")
    admin.add_argument("--password", help="asked for when not given (or ADMIN_PASSWORD)")
    admin.set_defaults(func=cmd_create_admin)

    seed = sub.add_parser("seed", help="add demo tickets (fast: COPY, one transaction)")
    seed.add_argument(
        "--tickets", type=_count(1), required=True, metavar="N", help="how many to add"
    )
    seed.add_argument(
        "--agents",
        type=_count(0),
        default=8,
        metavar="K",
        help="spread the tickets over at least K active staff, creating AGENTs if fewer exist "
        "(default 8)",
    )
    seed.add_argument(
        "--months", type=_count(1), default=18, metavar="M", help="how far back (default 18)"
    )
    seed.add_argument("--seed", type=int, metavar="S", help="random seed, for the same data again")
    seed.add_argument("--quiet", action="store_true", help="no progress bar")
    seed.set_defaults(func=cmd_seed)

    web = sub.add_parser("web", help="serve the app with gunicorn")
    web.add_argument(
        "--host",
        default="127.0.0.1",
        help="beyond loopback only behind a reverse proxy, named by TRUSTED_PROXIES",
    )
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--workers", type=_count(1), default=2)
    web.add_argument("--threads", type=_count(1), help="per worker (see supportdesk.web.server)")
    web.add_argument(
        "--dev",
        action="store_true",
        help="wait for the services, migrate, and reload on code changes",
    )
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help="deliver the outbox: the email worker")
    worker.add_argument(
        "--dev", action="store_true", help="wait for the services and migrate first"
    )
    worker.set_defaults(func=cmd_worker)

    scheduler = sub.add_parser(
        "scheduler",
        help="run the scheduler's jobs (auto-close, waiting_until); the worker runs them too",
    )
    scheduler.add_argument(
        "--once", action="store_true", required=True, help="run every job once and exit"
    )
    scheduler.set_defaults(func=cmd_scheduler)

    inbound = sub.add_parser(
        "smtp-inbound", help="an SMTP listener: mail to the support address becomes tickets"
    )
    inbound.add_argument("--host", default="127.0.0.1")
    inbound.add_argument("--port", type=int, default=DEV_INBOUND_PORT)
    inbound.add_argument("--dev", action="store_true", help="wait for the services first")
    inbound.set_defaults(func=cmd_smtp_inbound)

    mailbox = sub.add_parser(
        "dev-mailbox", help="a local SMTP server keeping each message as an .eml file"
    )
    mailbox.add_argument("--host", default="127.0.0.1")
    mailbox.add_argument("--port", type=int, default=DEV_SMTP_PORT)
    mailbox.add_argument("--dir", default=str(VAR_DIR / "mail"), help="where messages go")
    mailbox.set_defaults(func=cmd_dev_mailbox)

    dev = sub.add_parser("dev", help="run the whole system locally (honcho + Procfile.dev)")
    dev.add_argument("--port", type=int, default=8000, help="web port")
    dev.add_argument("--pg-port", type=int, default=DEV_PG_PORT)
    dev.add_argument("--redis-port", type=int, default=DEV_REDIS_PORT)
    dev.add_argument(
        "--inbound-port",
        type=int,
        default=DEV_INBOUND_PORT,
        help="the inbound SMTP listener: mail sent here becomes tickets",
    )
    dev.add_argument(
        "--smtp-port",
        type=int,
        default=DEV_SMTP_PORT,
        help="the dev mailbox's port (when SMTP_HOST is not set)",
    )
    dev.add_argument("--var-dir", default=str(VAR_DIR), help="data of the embedded servers")
    dev.set_defaults(func=cmd_dev)

    pg = sub.add_parser("embedded-postgres", help="run the embedded PostgreSQL in the foreground")
    pg.add_argument("--data-dir", default=str(VAR_DIR / "pg"))
    pg.add_argument("--port", type=int, default=DEV_PG_PORT)
    pg.add_argument("--database", default=DEV_DATABASE)
    pg.set_defaults(func=cmd_embedded_postgres)

    rd = sub.add_parser("embedded-redis", help="run the embedded Redis in the foreground")
    rd.add_argument("--data-dir", default=str(VAR_DIR / "redis"))
    rd.add_argument("--port", type=int, default=DEV_REDIS_PORT)
    rd.set_defaults(func=cmd_embedded_redis)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("yoyo").setLevel(logging.WARNING)  # one line per SQL statement otherwise
    args = build_parser().parse_args(argv)
    import psycopg

    try:
        return args.func(args)
    except ConfigError as ex:
        print(f"supportdesk: {ex}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as ex:
        # A database that does not answer is the operator's to fix, said in one line (its
        # address and why), not a traceback.
        reason = " ".join(str(ex).split())
        print(f"supportdesk: cannot reach the database: {reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
