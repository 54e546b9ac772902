"""Settings: read once from the environment (and `.env`), validated at start-up.

Every process builds one `Settings` with `Settings.from_env()`; tests build their own with
`Settings(...)` instead of patching `os.environ`.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from supportdesk.core.clients import IPNetwork, parse_networks
from supportdesk.core.text import EMAIL_SHAPE

PROJECT_ROOT = Path(__file__).resolve().parents[2]

ENVIRONMENTS = ("development", "test", "production")
STORAGE_BACKENDS = ("local", "s3")
# Outside production, a missing SECRET_KEY is made once per checkout and kept here: never a
# constant in the code, which would let anyone forge ADMIN tokens for an exposed dev or
# test instance.
DEV_SECRET_KEY_FILE = PROJECT_ROOT / "var" / "secret_key"
MIN_SECRET_KEY = 32
S3_MAX_PUT_BYTES = 5 * 1024**3  # the largest object S3 takes in one PUT
MAX_INBOUND_PARSE_SECONDS = 20


class ConfigError(Exception):
    """One or more settings are missing or malformed; `problems` maps name -> message."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        lines = [f"  {name}: {message}" for name, message in sorted(self.problems.items())]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


@dataclass(frozen=True)
class Settings:
    """Every setting of DESIGN.md section 8, plus a few operational knobs."""

    database_url: str | None = None
    # The schema's owner, for `supportdesk migrate` (DATABASE_URL when unset): the app can
    # then run as a role without UPDATE/DELETE on ticket_events (migrate.py).
    migration_database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = ""
    environment: str = "production"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # Seconds an SMTP connection, command or reply may take before the attempt is retried.
    smtp_timeout: int = 30
    mail_from: str = "support@example.com"
    # Shown as the sender's name when MAIL_FROM has none, and in every email's signature.
    company_name: str = "Support Desk"
    # Where staff reach the pages: links in emails to staff point here.
    public_base_url: str = "http://127.0.0.1:8000"
    inbound_email_secret: str | None = None
    storage_backend: str = "local"
    upload_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "var" / "uploads")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    max_upload_files: int = 5
    # How long parsing one inbound email may take (in a child process), plus 0.1 s for each
    # MB of it, before the message is kept unread, attached whole (inbound/sandbox.py).
    inbound_parse_seconds: float = 3
    # None switches psycopg's server-side prepared statements off (transaction poolers).
    db_prepare_threshold: int | None = 5
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    # How long a request waits for a free (or any) database connection before a 503.
    db_pool_timeout: int = 10
    bcrypt_rounds: int = 12
    session_ttl_minutes: int = 8 * 60
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed (clients.py).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Failed logins counted in Redis (ratelimit.LoginThrottle): past the limit of one account
    # from one client address, or of one address across accounts, that client gets 429. An
    # account failed past the slowdown from everywhere allows each address one try a window.
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    login_account_slowdown_after: int = 100
    login_window_seconds: int = 15 * 60
    # Tickets opened without a login, per hour: from one client address, for one requester.
    public_tickets_per_address: int = 30
    public_tickets_per_requester: int = 10
    # Acknowledgements of new tickets (by email or the public form): to one mailbox a day
    # (address variants such as +tags count as their mailbox), to one domain an hour, and
    # in all an hour (ratelimit.AckThrottle). Past a limit the ticket is opened unanswered.
    acks_per_address: int = 5
    acks_per_domain: int = 50
    acks_per_hour: int = 500
    # Messages a client may send to the inbound SMTP listener an hour (451 past it), and
    # the mail servers that relay to it (the company's MX), which are not counted.
    inbound_smtp_per_client: int = 100
    inbound_smtp_relays: tuple[IPNetwork, ...] = ()
    # Replies on the customer's view of a ticket an hour: per ticket, per client address.
    customer_replies_per_ticket: int = 20
    customer_replies_per_address: int = 60
    # The outbox worker (DESIGN.md section 6): retry i waits about base * 2**(i-1) seconds,
    # at most max; after max attempts the email is DEAD. The sweeper runs every sweep
    # seconds; a worker silent for three heartbeats is dead and its work is taken back.
    email_retry_base_seconds: float = 30
    email_retry_max_seconds: float = 3600
    email_max_attempts: int = 8
    email_sweep_seconds: float = 30
    worker_heartbeat_seconds: float = 10
    # Where the development mailbox keeps what it receives (`supportdesk dev-mailbox`).
    dev_mailbox_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "var" / "mail")

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def support_address(self) -> str:
        """The bare address of MAIL_FROM: `support@example.com`."""
        return self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()

    @property
    def mail_domain(self) -> str:
        """The domain of the support address: the right-hand side of our Message-IDs."""
        return self.mail_from.rsplit("<", 1)[-1].rstrip(">").rsplit("@", 1)[-1].strip()

    @property
    def secure_cookies(self) -> bool:
        """Cookies are `Secure` except where the app is served over plain http locally."""
        return self.environment == "production"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | str | None = ".env"
    ) -> Settings:
        """Read settings from `environ` (default `os.environ`) over the `.env` file, if any."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls.parse(values)

    @classmethod
    def parse(cls, values: Mapping[str, str]) -> Settings:
        """Build and validate settings from a mapping of environment names to strings."""
        reader = _Reader(values)
        environment = reader.choice("ENVIRONMENT", ENVIRONMENTS, "production")
        settings = cls(
            database_url=reader.url("DATABASE_URL", ("postgresql", "postgres")),
            migration_database_url=reader.url("MIGRATION_DATABASE_URL", ("postgresql", "postgres")),
            redis_url=reader.url("REDIS_URL", ("redis", "rediss", "unix")),
            secret_key=reader.optional("SECRET_KEY")
            or (
                reader.text("SECRET_KEY", None)
                if environment == "production"
                else development_secret_key(DEV_SECRET_KEY_FILE)
            ),
            environment=environment,
            smtp_host=reader.text("SMTP_HOST", "127.0.0.1"),
            smtp_port=reader.integer("SMTP_PORT", 1025, 1, 65535),
            smtp_username=reader.optional("SMTP_USERNAME"),
            smtp_password=reader.optional("SMTP_PASSWORD"),
            smtp_starttls=reader.boolean("SMTP_STARTTLS", False),
            smtp_timeout=reader.integer("SMTP_TIMEOUT", 30, 1, 600),
            mail_from=reader.email("MAIL_FROM", "support@example.com"),
            company_name=reader.text("COMPANY_NAME", "Support Desk"),
            public_base_url=(
                reader.url("PUBLIC_BASE_URL", ("http", "https"))
                or (reader.text("PUBLIC_BASE_URL", None) if environment == "production" else "")
                or "http://127.0.0.1:8000"
            ).rstrip("/"),
            inbound_email_secret=reader.optional("INBOUND_EMAIL_SECRET"),
            storage_backend=reader.choice("STORAGE_BACKEND", STORAGE_BACKENDS, "local"),
            upload_dir=Path(reader.text("UPLOAD_DIR", str(PROJECT_ROOT / "var" / "uploads"))),
            s3_bucket=reader.optional("S3_BUCKET"),
            s3_endpoint_url=reader.url("S3_ENDPOINT_URL", ("http", "https")),
            s3_region=reader.optional("S3_REGION"),
            aws_access_key_id=reader.optional("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=reader.optional("AWS_SECRET_ACCESS_KEY"),
            max_upload_bytes=reader.integer("MAX_UPLOAD_BYTES", 10 * 1024 * 1024, 1, 2**40),
            max_upload_files=reader.integer("MAX_UPLOAD_FILES", 5, 1, 100),
            inbound_parse_seconds=reader.seconds("INBOUND_PARSE_SECONDS", 3),
            db_prepare_threshold=reader.prepare_threshold("DB_PREPARE_THRESHOLD", 5),
            db_pool_min_size=reader.integer("DB_POOL_MIN_SIZE", 1, 0, 1000),
            db_pool_max_size=reader.integer("DB_POOL_MAX_SIZE", 10, 1, 1000),
            # Below the web server's 30 s request timeout (supportdesk.web.server), after which
            # the request's worker is restarted instead of answering with a 503.
            db_pool_timeout=reader.integer("DB_POOL_TIMEOUT", 10, 1, 25),
            bcrypt_rounds=reader.integer("BCRYPT_ROUNDS", 12, 4, 31),
            session_ttl_minutes=reader.integer("SESSION_TTL_MINUTES", 8 * 60, 1, 60 * 24 * 30),
            login_max_failures_per_account=reader.integer(
                "LOGIN_MAX_FAILURES_PER_ACCOUNT", 5, 1, 1000
            ),
            login_max_failures_per_address=reader.integer(
                "LOGIN_MAX_FAILURES_PER_ADDRESS", 20, 1, 100000
            ),
            login_account_slowdown_after=reader.integer(
                "LOGIN_ACCOUNT_SLOWDOWN_AFTER", 100, 1, 10**9
            ),
            login_window_seconds=reader.integer("LOGIN_WINDOW_SECONDS", 15 * 60, 1, 86400),
            trusted_proxies=reader.networks("TRUSTED_PROXIES"),
            public_tickets_per_address=reader.integer(
                "PUBLIC_TICKETS_PER_ADDRESS_PER_HOUR", 30, 1, 10**9
            ),
            public_tickets_per_requester=reader.integer(
                "PUBLIC_TICKETS_PER_REQUESTER_PER_HOUR", 10, 1, 10**9
            ),
            acks_per_address=reader.integer("ACKS_PER_ADDRESS_PER_DAY", 5, 1, 10**6),
            acks_per_domain=reader.integer("ACKS_PER_DOMAIN_PER_HOUR", 50, 1, 10**9),
            acks_per_hour=reader.integer("ACKS_PER_HOUR", 500, 1, 10**9),
            inbound_smtp_per_client=reader.integer(
                "INBOUND_SMTP_MESSAGES_PER_CLIENT_PER_HOUR", 100, 1, 10**9
            ),
            inbound_smtp_relays=reader.networks("INBOUND_SMTP_RELAYS"),
            customer_replies_per_ticket=reader.integer(
                "CUSTOMER_REPLIES_PER_TICKET_PER_HOUR", 20, 1, 10**9
            ),
            customer_replies_per_address=reader.integer(
                "CUSTOMER_REPLIES_PER_ADDRESS_PER_HOUR", 60, 1, 10**9
            ),
            email_retry_base_seconds=reader.seconds("EMAIL_RETRY_BASE_SECONDS", 30),
            email_retry_max_seconds=reader.seconds("EMAIL_RETRY_MAX_SECONDS", 3600),
            email_max_attempts=reader.integer("EMAIL_MAX_ATTEMPTS", 8, 1, 100),
            email_sweep_seconds=reader.seconds("EMAIL_SWEEP_SECONDS", 30),
            worker_heartbeat_seconds=reader.seconds("WORKER_HEARTBEAT_SECONDS", 10),
            dev_mailbox_dir=Path(
                reader.text("DEV_MAILBOX_DIR", str(PROJECT_ROOT / "var" / "mail"))
            ),
        )
        if reader.optional("ACKS_PER_ADDRESS_PER_HOUR") is not None:
            reader.problems["ACKS_PER_ADDRESS_PER_HOUR"] = (
                "was renamed ACKS_PER_ADDRESS_PER_DAY (acknowledgements to one address in 24 hours)"
            )
        reader.check_cross_field(settings)
        if reader.problems:
            raise ConfigError(reader.problems)
        return settings

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)


def development_secret_key(path: Path) -> str:
    """The key kept in `path`, made (random, 0600 from the start) by the first process that
    needs it; the processes of `make dev` start together, so the file appears whole or not
    at all. A file too short to be a key (emptied by hand) is replaced."""
    try:
        key: str | None = path.read_text().strip()
    except FileNotFoundError:
        key = None
    if key is not None and len(key) >= MIN_SECRET_KEY:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    try:
        if key is not None:  # there, but too short: replaced outright
            os.replace(draft, path)
        else:
            os.link(draft, path)  # fails if another process made it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        draft.unlink(missing_ok=True)
    return path.read_text().strip()


class _Reader:
    """Parses one value at a time, collecting every problem so they are reported together."""

    def __init__(self, values: Mapping[str, str]):
        self.values = values
        self.problems: dict[str, str] = {}

    def optional(self, name: str) -> str | None:
        value = self.values.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str | None) -> str:
        value = self.optional(name)
        if value is None:
            if default is None:
                self.problems[name] = "is required"
                return ""
            return default
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            self.problems[name] = f"must be one of {', '.join(choices)} (got {value!r})"
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems[name] = f"must be a whole number (got {raw!r})"
            return default
        if not low <= value <= high:
            self.problems[name] = f"must be between {low} and {high} (got {value})"
            return default
        return value

    def seconds(self, name: str, default: float) -> float:
        """A duration in seconds, fractions allowed (tests run the worker's timings fast)."""
        raw = self.optional(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not 0.01 <= value <= 86400 * 7:  # also refuses nan and inf
            self.problems[name] = f"must be a number of seconds from 0.01 to 604800 (got {raw!r})"
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.optional(name)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        self.problems[name] = f"must be true or false (got {raw!r})"
        return default

    def email(self, name: str, default: str) -> str:
        value = self.text(name, default)
        # "Support <support@example.com>" is allowed; the address part must look like one.
        address = value.rsplit("<", 1)[-1].rstrip(">").strip()
        if not EMAIL_SHAPE.match(address):
            self.problems[name] = f"must be an email address (got {value!r})"
        return value

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        value = self.optional(name)
        if value is None:
            return None
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in schemes:
            self.problems[name] = (
                f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return value

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        networks, bad = parse_networks(self.optional(name) or "")
        if bad:
            self.problems[name] = (
                f"must be IP addresses or CIDRs separated by commas (not {', '.join(bad)})"
            )
        return networks

    def prepare_threshold(self, name: str, default: int) -> int | None:
        raw = self.optional(name)
        if raw is not None and raw.lower() in ("none", "off", "disabled"):
            return None
        return self.integer(name, default, 0, 1_000_000)

    def check_cross_field(self, settings: Settings) -> None:
        if "SECRET_KEY" not in self.problems and len(settings.secret_key) < MIN_SECRET_KEY:
            self.problems["SECRET_KEY"] = f"must be at least {MIN_SECRET_KEY} characters"
        if settings.storage_backend == "s3" and not settings.s3_bucket:
            self.problems["S3_BUCKET"] = "is required when STORAGE_BACKEND is s3"
        if settings.storage_backend == "s3" and settings.max_upload_bytes > S3_MAX_PUT_BYTES:
            self.problems["MAX_UPLOAD_BYTES"] = (
                f"must be at most 5 GiB ({S3_MAX_PUT_BYTES}) when STORAGE_BACKEND is s3:"
                " each file is stored with one PUT"
            )
        if settings.inbound_parse_seconds > MAX_INBOUND_PARSE_SECONDS:
            self.problems["INBOUND_PARSE_SECONDS"] = (
                f"must be at most {MAX_INBOUND_PARSE_SECONDS}: the webhook answers within the "
                "web server's 30 s request timeout"
            )
        if settings.db_pool_min_size > settings.db_pool_max_size:
            self.problems["DB_POOL_MIN_SIZE"] = "must not exceed DB_POOL_MAX_SIZE"
        if settings.email_retry_base_seconds > settings.email_retry_max_seconds:
            self.problems["EMAIL_RETRY_BASE_SECONDS"] = "must not exceed EMAIL_RETRY_MAX_SECONDS"
        if bool(settings.smtp_username) != bool(settings.smtp_password):
            missing = "SMTP_PASSWORD" if settings.smtp_username else "SMTP_USERNAME"
            self.problems[missing] = "SMTP_USERNAME and SMTP_PASSWORD are set together"
