"""`make dev`: the whole system on one machine, and what its processes need first.

`supportdesk dev` (cli.cmd_dev) runs Procfile.dev through honcho with the environment
`dev_environment` builds: embedded PostgreSQL and Redis where no URL is configured, the local
mailbox where no SMTP host is. Each process waits for the servers (`wait_for_services`); the
web process makes the first ADMIN of a new database (`seed_dev_admin`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from supportdesk.core.config import PROJECT_ROOT, Settings

VAR_DIR = PROJECT_ROOT / "var"
DEV_PG_PORT = 54329
DEV_REDIS_PORT = 63799
DEV_SMTP_PORT = 1025
DEV_INBOUND_PORT = 2525
DEV_DATABASE = "supportdesk"
DEV_APP_ROLE = "supportdesk_app"  # the role the dev set runs the app as (migrate.py)


def seed_dev_admin(settings: Settings, var_dir: Path) -> None:
    """On the first start of a development database, an ADMIN to log in with."""
    import secrets

    from supportdesk.accounts.staff import count_users, create_admin
    from supportdesk.core.db import Database

    credentials = var_dir / "dev-admin.txt"
    db = Database(settings.replace(db_pool_min_size=0, db_pool_max_size=1)).open()
    try:
        if count_users(db) == 0:
            password = secrets.token_urlsafe(12)
            create_admin(db, "admin@example.com", "Dev Admin", password, settings.bcrypt_rounds)
            var_dir.mkdir(parents=True, exist_ok=True)
            credentials.write_text(f"admin@example.com\n{password}\n")
            credentials.chmod(0o600)
    finally:
        db.close()
    if credentials.exists():
        email, password = credentials.read_text().split()[:2]
        print(
            f"\n  Log in at /login as {email} with password {password}"
            f"\n  (kept in {credentials})\n",
            flush=True,
        )


def wait_for_services(settings: Settings, timeout: float) -> None:
    """The dev set starts everything at once: wait for PostgreSQL and Redis to answer."""
    import psycopg
    import redis

    deadline = time.monotonic() + timeout
    for name, probe in (
        (
            "PostgreSQL",
            lambda: psycopg.connect(
                settings.migration_database_url or settings.database_url or "", connect_timeout=2
            ).close(),
        ),
        (
            "Redis",
            lambda: redis.Redis.from_url(settings.redis_url or "", socket_connect_timeout=2).ping(),
        ),
    ):
        while True:
            try:
                probe()
                break
            except Exception as ex:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not answer within {timeout:.0f}s: {ex}") from ex
                time.sleep(0.5)


def dev_environment(
    environ: Mapping[str, str],
    var_dir: Path,
    *,
    port: int,
    pg_port: int,
    redis_port: int,
    inbound_port: int,
    smtp_port: int,
) -> tuple[dict[str, str], list[str]]:
    """The environment of `make dev`'s processes and which of Procfile.dev's to start:
    embedded servers and the local mailbox wherever no URL or SMTP host is configured."""
    env = dict(environ)
    env.setdefault("ENVIRONMENT", "development")
    settings = Settings.from_env(env)
    # Procfile.dev reads these, so that one place decides the ports and the data folder.
    env.update(
        SUPPORTDESK_VAR_DIR=str(var_dir),
        SUPPORTDESK_WEB_PORT=str(port),
        SUPPORTDESK_PG_PORT=str(pg_port),
        SUPPORTDESK_REDIS_PORT=str(redis_port),
        PYTHONUNBUFFERED="1",
    )
    if not configured("UPLOAD_DIR", env):
        env["UPLOAD_DIR"] = str(var_dir / "uploads")  # the dev set keeps its data together
    env["SUPPORTDESK_INBOUND_PORT"] = str(inbound_port)
    processes = ["web", "worker", "inbound"]
    if not configured("SMTP_HOST", env):
        # No SMTP server configured: the worker sends to the local mailbox (/dev/mailbox).
        env.update(
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp_port),
            SUPPORTDESK_SMTP_PORT=str(smtp_port),
            DEV_MAILBOX_DIR=str(var_dir / "mail"),
        )
        processes.insert(0, "mail")
    if not settings.database_url:
        # Migrations as the server's owner, the app as a role that may only read and write
        # rows (and only append to the timeline): as production should run.
        server = f"127.0.0.1:{pg_port}/{DEV_DATABASE}"
        env["MIGRATION_DATABASE_URL"] = f"postgresql://postgres@{server}"
        env["DATABASE_URL"] = f"postgresql://{DEV_APP_ROLE}@{server}"
        processes.insert(0, "postgres")
    if not settings.redis_url:
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        processes.insert(0, "redis")
    return env, processes


def configured(name: str, env: dict[str, str]) -> bool:
    """Whether a setting is given in the environment or in .env (defaults do not count)."""
    from dotenv import dotenv_values

    if env.get(name, "").strip():
        return True
    return (
        bool((dotenv_values(".env").get(name) or "").strip()) if Path(".env").is_file() else False
    )
