"""The test harness: a real PostgreSQL and a real Redis for the whole run, clean for each test.

By default both are embedded (started here from the PyPI packages, on free ports, in a
temporary directory). `TEST_DATABASE_URL` selects an external PostgreSQL server instead: the
harness creates its own database there (the user needs CREATEDB) and drops it at the end.
`TEST_REDIS_URL` selects an external Redis database, which is flushed before every test (one
database for each test process: `_worker_database`).
`TEST_DATABASE_POOLER_URL` (with `TEST_DATABASE_URL`) names a transaction pooler in front of
that server, such as PgBouncer in transaction mode (Supabase's port 6543): see POOLER_URL.
"""

from __future__ import annotations

import collections
import functools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import falcon
import psycopg
import pytest
import redis
import webtest
from psycopg import sql

from supportdesk.core.config import Settings
from supportdesk.core.db import Database
from supportdesk.core.migrate import apply_migrations, grant_app_role
from supportdesk.core.redis_client import make_redis
from supportdesk.dev.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.web.app import create_app
from tests.imapserver import Dovecot
from tests.oauthserver import AuthorizationServer, oauth_settings
from tests.processes import SUPPORTDESK, settings_env, wait_until_healthy

# The per-test cleanup: every table of the schema emptied and every sequence restarted, on a
# connection kept for the run (`Wiper`). DELETE, not TRUNCATE: truncating the schema's tables
# made new files for each and cost 200-800 ms a test on the machine's PostgreSQL (fsync on),
# most of the suite's time. And only the tables that hold a row, found by one probe of them
# all: a DELETE of each of them was 5 ms of the server's time a test, the probe and the few
# DELETEs 1.5. ticket_events and audit_log refuse changes through triggers; the harness runs
# as a superuser and switches triggers (foreign keys' too) off for its own transaction.
SCHEMA_TABLES = """
SELECT tablename FROM pg_tables
WHERE schemaname = current_schema() AND tablename NOT LIKE '%yoyo%' ORDER BY tablename
"""
SCHEMA_SEQUENCES = """
SELECT sequencename, start_value FROM pg_sequences
WHERE schemaname = current_schema() ORDER BY sequencename
"""


# The application's connections go through this pooler (its host and port), as the app's
# role, with no server-side prepared statements, as behind Supabase's transaction pooler;
# the harness's own connections (create the database, migrate, wipe, the owner's SQL-level
# tests) stay direct, as MIGRATION_DATABASE_URL does in production.
POOLER_URL = os.environ.get("TEST_DATABASE_POOLER_URL")
if POOLER_URL:
    # For every `supportdesk` process a test starts too (tests/processes.py copies the env).
    os.environ["DB_PREPARE_THRESHOLD"] = "none"


def _with_database(url: str, database: str) -> str:
    """The same server URL, naming another database."""
    return urlsplit(url)._replace(path="/" + database).geturl()


def _with_user(url: str, user: str) -> str:
    """The same server and database, as `user`."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}").geturl()


def _via_pooler(url: str, user: str | None = None) -> str:
    """The same database (as `user`, else the URL's), through TEST_DATABASE_POOLER_URL's
    host and port when one is set."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    if POOLER_URL:
        if not os.environ.get("TEST_DATABASE_URL"):
            pytest.fail("TEST_DATABASE_POOLER_URL needs TEST_DATABASE_URL, the server behind it")
        host = urlsplit(POOLER_URL).netloc.rpartition("@")[2]
    userinfo = user or userinfo
    return parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host).geturl()


def pytest_configure(config: pytest.Config) -> None:
    """The run's temporary files (the embedded servers' data, uploads, every tmp_path) on the
    memory file system when there is one with room and TMPDIR does not say otherwise: on a
    disk, each stored file's fsync and each server's writes cost the suite time it spends
    waiting. Set in the controlling process, before pytest-xdist starts the others, which
    inherit it."""
    if hasattr(config, "workerinput") or os.environ.get("TMPDIR"):
        return
    memory = Path("/dev/shm")  # noqa: S108 - each file in it is made by mkdtemp/mkstemp
    roomy = memory.is_dir() and os.access(memory, os.W_OK)
    if roomy and shutil.disk_usage(memory).free > 4 * 2**30:
        os.environ["TMPDIR"] = str(memory)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again


# Modules of long tests (seconds each: they start processes, servers and a browser and
# wait on them), with about how long each takes in all, in seconds, in a full run on two
# cores: where each test process starts (pytest_collection_modifyitems).
LONG_MODULES = {
    "test_faults.py": 75,
    "e2e/test_journey.py": 65,
    "api/test_fuzz.py": 60,
    "worker/test_mailbox_workers.py": 55,
    "worker/test_webhook_delivery.py": 30,
    "e2e/test_team_journey.py": 30,
    "worker/test_recovery.py": 22,
    "mail/test_fetcher.py": 20,
    "web/test_web_server.py": 20,
    "dev/test_dev.py": 17,
    "mail/test_parse_property.py": 16,
    "test_cli.py": 12,
    "mail/test_smtp_hostile.py": 11,
    "dev/test_seed.py": 10,
    "e2e/test_account_pages.py": 10,
    "worker/test_notifications.py": 9,
    "sql/test_pids.py": 9,
    "e2e/test_webhooks_page.py": 8,
    "e2e/test_cc_journey.py": 8,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test process starts with long tests and ends with short ones. pytest-xdist
    (worksteal) gives each process an equal, contiguous share of the collected tests, in
    order, and lets a process that ran out take the second half of the busiest one's rest.
    In collection order, the last share held nearly all the long tests (the faults, the
    workers, the journeys): they ran side by side at the end, waiting on their processes,
    with cores idle. Here the long modules are dealt out to the shares by their time
    (longest first, each to the share with least), each share's first, and the short tests
    fill each share after them, so the end of the run is short tests on every core."""
    shares = getattr(config, "workerinput", {}).get("workercount", 0)
    if shares < 2:
        return
    tests_dir = Path(__file__).parent
    modules: dict[Path, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.path, []).append(item)

    def seconds(path: Path) -> int:
        return LONG_MODULES.get(path.relative_to(tests_dir).as_posix(), 0)

    long_modules = sorted((path for path in modules if seconds(path)), key=seconds, reverse=True)
    short = [item for path, tests in modules.items() if not seconds(path) for item in tests]
    dealt: list[list[pytest.Item]] = [[] for _ in range(shares)]
    load = [0] * shares
    for path in long_modules:
        least = load.index(min(load))
        dealt[least].extend(modules[path])
        load[least] += seconds(path)
    ordered: list[pytest.Item] = []
    for share in range(shares):
        size = (len(items) - len(ordered)) // (shares - share)  # as xdist deals them
        fill = max(0, size - len(dealt[share]))
        ordered += dealt[share] + short[:fill]
        del short[:fill]
    items[:] = ordered + short


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server where the tests may create databases."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    base = Path(tempfile.mkdtemp(prefix="sd-pg-"))
    server = EmbeddedPostgres(base / "data", free_port(), log_file=base / "pg.log")
    server.start(fast=True)
    try:
        yield server.url()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> Iterator[str]:
    """A database of this run, with the migrations applied once."""
    name = f"sdtest_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # A commit does not wait for its WAL to reach the disk, as on the embedded server
        # (fsync off): a throwaway database, and the tests that restart a server to see what
        # survives run their own with durable commits.
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name))
        )
    url = _with_database(pg_server_url, name)
    apply_migrations(url)
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


APP_ROLE = "supportdesk_app_test"


@pytest.fixture(scope="session")
def app_database_url(database_url: str) -> str:
    """The same database as the application's own role: it owns nothing, and may only
    append to ticket_events (migrate.grant_app_role), as the app should run in production.
    The `database_url` above is the owner's, for migrations and SQL-level tests."""
    grant_app_role(database_url, APP_ROLE, create=True)
    return _via_pooler(database_url, APP_ROLE)


def _worker_database(url: str) -> str:
    """`make test` runs the suite in two processes (pytest-xdist): each flushes its Redis
    database before every test, so on an external server each takes its own. The first
    keeps TEST_REDIS_URL's database; the next ones count down from it (/15, /14, ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw") or 0)
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{(base - index) % 16}").geturl()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("TEST_REDIS_URL")
    if external:
        yield _worker_database(external)
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port(), persist=False).start()
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def base_settings(
    database_url: str, app_database_url: str, redis_url: str, tmp_path_factory
) -> Settings:
    return Settings(
        database_url=app_database_url,
        # Session locks (a mailbox's fetcher, the scheduler) on the server itself, as
        # DIRECT_DATABASE_URL gives them in production behind a transaction pooler: a session
        # lock taken through one would stay on a pooled server connection after we close.
        direct_database_url=_with_user(database_url, APP_ROLE),
        migration_database_url=database_url,
        redis_url=redis_url,
        secret_key="test-secret-key-" + "x" * 32,
        environment="test",
        upload_dir=tmp_path_factory.mktemp("uploads"),
        bcrypt_rounds=4,
        db_pool_max_size=20,
        db_prepare_threshold=None if POOLER_URL else Settings.db_prepare_threshold,
        # The parse deadline with room for four test processes on two busy cores: a 9 MiB
        # message took over the 3 s default there and was kept unread. The deadline's own
        # tests set theirs (0.05 s).
        inbound_parse_seconds=15.0,
        # Many tests open tickets from one address; the limits have their own tests.
        public_tickets_per_address=10**6,
        public_tickets_per_requester=10**6,
        acks_per_domain=10**6,
        acks_per_hour=10**6,
    )


@pytest.fixture(scope="session")
def uploads_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture
def settings(base_settings: Settings, redis_client: redis.Redis, uploads_root: Path) -> Settings:
    """The settings of a test; asking for them also gives the test an empty Redis and an
    empty upload folder. The folder is the run's one, emptied, so that tests' settings are
    equal and can share an app (`shared_app`)."""
    uploads = uploads_root / "files"
    shutil.rmtree(uploads, ignore_errors=True)
    return base_settings.replace(upload_dir=uploads)


_APPS: collections.OrderedDict[tuple[Settings, int, tuple], tuple[falcon.App, dict]] = (
    collections.OrderedDict()
)
_KEPT_APPS = 8  # the run's few settings (and a module's clock or routes)


def shared_app(settings: Settings, db: Database, **made_with: Any) -> falcon.App:
    """The app of these settings, made once for the run: building one (its routes, its
    router's code, its OpenAPI document) costs more than most tests. What it holds between
    requests lives in PostgreSQL and Redis, which every test empties. A test that changes a
    setting gets the app of its settings. `made_with` are create_app's other arguments (a
    `clock`, `extra_routes`): the app is shared by the tests that pass the same objects, such
    as a module's one `tests.clock.Clock`, set back for each test."""
    key = (settings, id(db), tuple(sorted((name, id(value)) for name, value in made_with.items())))
    kept = _APPS.pop(key, None)
    app = (
        kept[0]
        if kept
        else create_app(settings, db=db, redis_client=make_redis(settings), **made_with)
    )
    _APPS[key] = (app, made_with)  # holding them: no other object takes their ids meanwhile
    while len(_APPS) > _KEPT_APPS:
        _APPS.popitem(last=False)
    return app


class Wiper:
    """The harness's own connection for the cleanup, opened again after a test restarted
    the server under it."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.connection: psycopg.Connection | None = None
        self.wipes = 0  # how many times the database was emptied (a world kept knows its own)
        self._probe: sql.Composable | None = None
        self._restart: sql.Composable | None = None

    def wipe(self) -> None:
        self.wipes += 1
        for attempt in (1, 2):
            try:
                if self.connection is None or self.connection.closed:
                    self.connection = psycopg.connect(self.database_url, autocommit=True)
                self._empty(self.connection)
                return
            except psycopg.OperationalError:
                self.close()
                if attempt == 2:
                    raise

    def _empty(self, conn: psycopg.Connection) -> None:
        if self._probe is None or self._restart is None:
            tables = [name for (name,) in conn.execute(SCHEMA_TABLES)]
            self._probe = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {} FROM (SELECT FROM {} LIMIT 1) AS one").format(
                    sql.Literal(name), sql.Identifier(name)
                )
                for name in tables
            )
            self._restart = sql.SQL("SELECT {}").format(
                sql.SQL(", ").join(
                    sql.SQL("setval({}::regclass, {}, false)").format(
                        sql.Literal(sql.Identifier(name).as_string(conn)), sql.Literal(start)
                    )
                    for name, start in conn.execute(SCHEMA_SEQUENCES)
                )
            )
        holding = [name for (name,) in conn.execute(self._probe)]
        # One query string, one transaction: SET LOCAL holds for the DELETEs.
        conn.execute(
            sql.SQL("; ").join(
                [
                    sql.SQL("SET LOCAL session_replication_role = replica"),
                    *(sql.SQL("DELETE FROM {}").format(sql.Identifier(name)) for name in holding),
                    self._restart,
                ]
            )
        )

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@pytest.fixture(scope="session")
def wiper(database_url: str) -> Iterator[Wiper]:
    wiper = Wiper(database_url)
    yield wiper
    wiper.close()


@pytest.fixture(scope="session")
def session_db(base_settings: Settings) -> Iterator[Database]:
    db = Database(base_settings).open(wait=True)
    yield db
    db.close()


@pytest.fixture
def db(session_db: Database, wiper: Wiper) -> Database:
    """The pool of this run, over a database emptied for this test."""
    wiper.wipe()
    return session_db


@pytest.fixture(scope="session")
def _redis_connection(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_client(_redis_connection: redis.Redis) -> redis.Redis:
    """The run's Redis, flushed for this test. One client for the run: a client of its own
    for each test opened a connection for each (with redis-py's handshake), thousands of
    them; a test that closes it gets a new connection on its next command."""
    _redis_connection.flushdb()
    return _redis_connection


@pytest.fixture
def conn(db: Database, database_url: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit connection for SQL-level tests (each statement stands alone), as
    the schema's owner: what the database itself refuses, whoever asks."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def app(settings: Settings, db: Database, redis_client: redis.Redis) -> falcon.App:
    return shared_app(settings, db)


@pytest.fixture
def client(app) -> webtest.TestApp:
    return webtest.TestApp(app)


# --- staff and sessions ------------------------------------------------------------------

STAFF_PASSWORD = "correct horse battery"


@pytest.fixture
def tokens(settings: Settings, redis_client: redis.Redis):
    """Tokens exactly as the app issues them (same key)."""
    from datetime import timedelta

    from supportdesk.accounts.auth import TokenService

    return TokenService(settings.secret_key, timedelta(minutes=settings.session_ttl_minutes))


@functools.cache
def hashed(password: str, rounds: int) -> str:
    """One bcrypt hash per password for the run: staff are made by the thousand."""
    from supportdesk.accounts.auth import hash_password

    return hash_password(password, rounds)


@pytest.fixture
def make_staff(db: Database, settings: Settings):
    """make_staff(role="AGENT", password=..., is_active=True, **over) -> the users row."""
    from tests.factories import make_user

    def make(role: str = "AGENT", password: str = STAFF_PASSWORD, **over):
        with db.transaction() as conn:
            return make_user(
                conn,
                role=role,
                password_hash=hashed(password, settings.bcrypt_rounds),
                **over,
            )

    return make


@pytest.fixture
def bearer(tokens):
    """bearer(user) -> the Authorization header of a fresh session of that user."""

    def headers(user) -> dict[str, str]:
        token, _ = tokens.issue(user)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture(scope="session")
def live_server(base_settings: Settings) -> Iterator[str]:
    """The real thing over HTTP: `supportdesk web` (gunicorn) on a free port, on the test
    database and Redis. Yields its base URL."""
    import subprocess

    port = free_port()
    env = settings_env(
        base_settings,
        BCRYPT_ROUNDS="4",
        PUBLIC_TICKETS_PER_ADDRESS_PER_HOUR="1000000",
        PUBLIC_TICKETS_PER_REQUESTER_PER_HOUR="1000000",
    )
    log = tempfile.NamedTemporaryFile(prefix="sd-web-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            SUPPORTDESK,
            "web",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc, log.name)
    except RuntimeError:
        proc.kill()
        raise
    yield url
    proc.terminate()
    proc.wait(15)


@pytest.fixture
def run_cli(database_url: str, tmp_path: Path, db: Database):
    """run_cli("migrate", SOME_VAR="x") -> the finished `supportdesk` process, run as a user
    runs it: a subprocess on the test database, in a folder without a .env, no terminal."""
    import subprocess

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ADMIN_")}
        environ |= {"DATABASE_URL": database_url, "ENVIRONMENT": "test", "BCRYPT_ROUNDS": "4"}
        # Never the project's var/uploads: the scheduler's orphan sweep would remove the
        # files there that this test database has no rows for.
        environ.setdefault("UPLOAD_DIR", str(tmp_path / "uploads"))
        return subprocess.run(
            [SUPPORTDESK, *args],
            cwd=tmp_path,
            env=environ | env,
            text=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )

    return run


# --- an S3-protocol server (moto's, in this process) ----------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on a free port, for the whole run: a real HTTP server
    speaking the S3 protocol, which boto3 talks to as to Supabase Storage or MinIO."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def _s3_bucket(s3_endpoint: str) -> tuple[object, str]:
    """(client, bucket): the run's one bucket, for the tests to share."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    bucket = f"sd-test-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str, _s3_bucket) -> Settings:
    """The test settings with STORAGE_BACKEND=s3 on the run's bucket, emptied for this test
    (as the upload folder is): equal settings for all, so that they share an app
    (`shared_app`); a bucket and an app for each test cost more than most of them."""
    client, bucket = _s3_bucket
    while keys := [
        {"Key": item["Key"]}
        for item in client.list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", [])
    ]:
        client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    return settings.replace(
        storage_backend="s3",
        s3_bucket=bucket,
        s3_endpoint_url=s3_endpoint,
        s3_region="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


# Lines a test wants in the run's summary (the fuzzing's coverage): shown even when the
# output of passing tests is not. A test process of pytest-xdist hands its lines to the
# controlling one, which writes the summary.
RUN_SUMMARY: list[str] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    handed = getattr(session.config, "workeroutput", None)  # set in an xdist test process
    if handed is not None:
        handed["run_summary"] = list(RUN_SUMMARY)


def pytest_testnodedown(node, error) -> None:
    RUN_SUMMARY.extend(getattr(node, "workeroutput", {}).get("run_summary", []))


def pytest_terminal_summary(terminalreporter) -> None:
    for line in RUN_SUMMARY:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[AuthorizationServer]:
    """The tests' own OAuth 2.0 authorization server (tests/oauthserver.py), for the run."""
    server = AuthorizationServer().start()
    yield server
    server.stop()


@pytest.fixture
def oauth(oauth_server: AuthorizationServer) -> AuthorizationServer:
    """The run's authorization server, with no grants, tokens or switches left over."""
    oauth_server.reset()
    return oauth_server


@pytest.fixture(scope="session")
def dovecot(oauth_server: AuthorizationServer) -> Iterator[Dovecot]:
    """One real IMAP server for the run (tests/imapserver.py); each test takes users of its
    own (`imap_user`). Skips, saying how to get Dovecot, where it is not installed. Its
    XOAUTH2 logins are checked against the run's authorization server (`oauth_server`)."""
    # Not under pytest's temporary folder: as root, Dovecot's unprivileged processes must be
    # able to reach the folder, and pytest's is private to its user.
    directory = Path(tempfile.mkdtemp(prefix="supportdesk-dovecot-"))
    directory.chmod(0o755)
    server = Dovecot(directory, introspection_url=oauth_server.introspection_url)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def imap_user(dovecot: Dovecot) -> str:
    """A new, empty mailbox user on the run's Dovecot (password: "secret")."""
    return dovecot.add_user(f"support-{secrets.token_hex(4)}@example.com")


@pytest.fixture
def configured(settings: Settings, oauth):
    """The test's settings with the OAuth providers pointed at the tests' own authorization
    server (`oauth`)."""
    return oauth_settings(settings, oauth)


@pytest.fixture
def box(configured: Settings) -> SecretBox:
    """The secret box of `configured`: what the desk seals mailbox secrets with."""
    return SecretBox(configured)
