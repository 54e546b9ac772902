"""Settings: read once from the environment (and `.env`), validated at start-up.

Every process builds one `Settings` with `Settings.from_env()`; tests build their own with
`Settings(...)` instead of patching `os.environ`.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any, Generic, TypeVar

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


# --- reading one value ----------------------------------------------------------------------
# Each reader takes the stripped, non-empty text of one variable and returns its value, or
# raises BadValue with what is wrong; `Settings.parse` names the variable and goes on.


class BadValue(ValueError):
    """The text of one setting is not a value it can take; the message says why."""


def integer(low: int, high: int) -> Callable[[str], int]:
    def read(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise BadValue(f"must be a whole number (got {raw!r})") from None
        if not low <= value <= high:
            raise BadValue(f"must be between {low} and {high} (got {value})")
        return value

    return read


def seconds(raw: str) -> float:
    """A duration in seconds, fractions allowed (tests run the worker's timings fast)."""
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.01 <= value <= 86400 * 7:  # also refuses nan and inf
        raise BadValue(f"must be a number of seconds from 0.01 to 604800 (got {raw!r})")
    return value


_DURATION = re.compile(r"^([0-9]{1,9})([smhd]?)$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(raw: str) -> timedelta | None:
    """A span of time as people write it: `7d`, `12h`, `30m`, `90s` (a bare number is
    seconds); `0` is never (None)."""
    match = _DURATION.match(raw.strip().lower())
    if match is None:
        raise BadValue(f"must be a duration such as 7d, 12h, 30m or 90s, or 0 (got {raw!r})")
    amount = int(match[1]) * _DURATION_UNITS[match[2]]
    if amount > 86400 * 36500:
        raise BadValue(f"must be at most 100 years (got {raw!r})")
    return timedelta(seconds=amount) if amount else None


def boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise BadValue(f"must be true or false (got {raw!r})")


def one_of(*choices: str) -> Callable[[str], str]:
    def read(raw: str) -> str:
        value = raw.lower()
        if value not in choices:
            raise BadValue(f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    return read


def url(*schemes: str, trailing_slash: bool = True) -> Callable[[str], str]:
    def read(raw: str) -> str:
        scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
        if scheme not in schemes:
            raise BadValue(f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return raw if trailing_slash else raw.rstrip("/")

    return read


def _bare_address(mail_from: str) -> str:
    """The address part of MAIL_FROM: `Support <support@example.com>` -> `support@example.com`.
    The one place it is taken apart: read it as `Settings.support_address`."""
    return mail_from.rsplit("<", 1)[-1].rstrip(">").strip()


def email(raw: str) -> str:
    # "Support <support@example.com>" is allowed; the address part must look like one.
    if not EMAIL_SHAPE.match(_bare_address(raw)):
        raise BadValue(f"must be an email address (got {raw!r})")
    return raw


def networks(raw: str) -> tuple[IPNetwork, ...]:
    found, bad = parse_networks(raw)
    if bad:
        raise BadValue(f"must be IP addresses or CIDRs separated by commas (not {', '.join(bad)})")
    return found


def host_names(raw: str) -> tuple[str, ...]:
    """Host-name-like tokens separated by commas (RFC 8601 authserv-ids), lower-cased."""
    names = tuple(n.strip().lower() for n in raw.split(",") if n.strip())
    bad = [n for n in names if not _HOST_NAME.fullmatch(n)]
    if bad:
        raise BadValue(f"must be host names separated by commas (not {', '.join(bad)})")
    return names


_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?")


def fernet_key(raw: str) -> str:
    """A Fernet key: 32 bytes in URL-safe base64."""
    try:
        ok = len(base64.urlsafe_b64decode(raw.encode("ascii"))) == 32 and len(raw) == 44
    except (ValueError, UnicodeEncodeError):
        ok = False
    if not ok:
        raise BadValue("must be a Fernet key: 32 bytes in URL-safe base64 (44 characters)")
    return raw


def prepare_threshold(raw: str) -> int | None:
    if raw.lower() in ("none", "off", "disabled"):
        return None
    return integer(0, 1_000_000)(raw)


# --- declaring a setting --------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One setting, declared once: its variable, how its text is read, its default and what
    it is for. README's table of settings is checked against these (tests/core)."""

    env: str
    read: Callable[[str], T]
    default: T
    meaning: str
    # Missing in production is a problem; elsewhere the default (SECRET_KEY's: see parse).
    required_in_production: bool = False
    # The default as README's table shows it, where the value itself would not say it.
    shown: str | None = None

    def documented_default(self) -> str:
        """The default column of README's table."""
        if self.shown is not None:
            return self.shown
        if self.required_in_production:
            elsewhere = f" (elsewhere `{self.default}`)" if self.default else ""
            return f"required in production{elsewhere}"
        if self.default is None or self.default == ():
            return "none"
        if isinstance(self.default, bool):
            return f"`{str(self.default).lower()}`"
        if isinstance(self.default, float):
            return f"`{self.default:g}`"
        if isinstance(self.default, Path):
            return f"`{self.default.relative_to(PROJECT_ROOT)}`"
        return f"`{self.default}`"


def setting(
    env: str,
    read: Callable[[str], T],
    default: T,
    meaning: str,
    *,
    required_in_production: bool = False,
    shown: str | None = None,
) -> T:
    """A field of `Settings` carrying its declaration (`SETTINGS` lists them by field)."""
    declared = Setting(env, read, default, meaning, required_in_production, shown)
    return field(default=default, metadata={"setting": declared})


POSTGRES = ("postgresql", "postgres")
EMBEDDED = "embedded (dev only)"


@dataclass(frozen=True)
class Settings:
    """Every setting of DESIGN.md section 8, plus a few operational knobs."""

    database_url: str | None = setting(
        "DATABASE_URL", url(*POSTGRES), None, "the role the app runs as", shown=EMBEDDED
    )
    # The app can then run as a role without UPDATE/DELETE on ticket_events (migrate.py).
    migration_database_url: str | None = setting(
        "MIGRATION_DATABASE_URL",
        url(*POSTGRES),
        None,
        "the schema owner's connection, for `supportdesk migrate`",
        shown="`DATABASE_URL`",
    )
    # Session advisory locks (a mailbox's fetcher, the scheduler) need a connection of their
    # own on the server itself: a transaction pooler (PgBouncer, Supabase's port 6543) hands
    # a session's statements to any server connection, and a lock taken there is held by no
    # one we know.
    direct_database_url: str | None = setting(
        "DIRECT_DATABASE_URL",
        url(*POSTGRES),
        None,
        "the app's role on the server itself, not through a transaction pooler: the worker "
        "holds its per-mailbox locks and the scheduler's lock there",
        shown="`DATABASE_URL`",
    )
    redis_url: str | None = setting(
        "REDIS_URL", url("redis", "rediss", "unix"), None, "the Redis server", shown=EMBEDDED
    )
    secret_key: str = setting(
        "SECRET_KEY",
        str,
        "",
        "signs session tokens, links and Message-ID tokens; 32+ characters",
        required_in_production=True,
    )
    encryption_key: str | None = setting(
        "ENCRYPTION_KEY",
        fernet_key,
        None,
        "encrypts mailbox passwords and OAuth tokens at rest (a Fernet key: `python -c "
        "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`); "
        "derived from SECRET_KEY when not set",
    )
    environment: str = setting(
        "ENVIRONMENT",
        one_of(*ENVIRONMENTS),
        "production",
        "development, test or production",
        shown="`production` (`make dev`: `development`)",
    )
    smtp_host: str = setting("SMTP_HOST", str, "127.0.0.1", "outbound SMTP server")
    smtp_port: int = setting("SMTP_PORT", integer(1, 65535), 1025, "outbound SMTP port")
    smtp_username: str | None = setting("SMTP_USERNAME", str, None, "set with SMTP_PASSWORD")
    smtp_password: str | None = setting("SMTP_PASSWORD", str, None, "set with SMTP_USERNAME")
    smtp_starttls: bool = setting(
        "SMTP_STARTTLS", boolean, False, "upgrade the SMTP connection with STARTTLS"
    )
    smtp_timeout: int = setting(
        "SMTP_TIMEOUT",
        integer(1, 600),
        30,
        "seconds an SMTP connection, command or reply may take before the attempt is retried",
    )
    mail_from: str = setting(
        "MAIL_FROM",
        email,
        "support@example.com",
        "the support address, a display name allowed: From, Reply-To and envelope sender",
    )
    company_name: str = setting(
        "COMPANY_NAME",
        str,
        "Support Desk",
        "the sender's name when MAIL_FROM has none, and every email's signature",
    )
    public_base_url: str = setting(
        "PUBLIC_BASE_URL",
        url("http", "https", trailing_slash=False),
        "http://127.0.0.1:8000",
        "where the pages are reached: the links in emails",
        required_in_production=True,
    )
    inbound_email_secret: str | None = setting(
        "INBOUND_EMAIL_SECRET", str, None, "shared secret of the signed inbound-email webhook"
    )
    storage_backend: str = setting(
        "STORAGE_BACKEND", one_of(*STORAGE_BACKENDS), "local", "where uploaded files are kept"
    )
    upload_dir: Path = setting(
        "UPLOAD_DIR", Path, PROJECT_ROOT / "var" / "uploads", "where the local backend keeps files"
    )
    s3_bucket: str | None = setting("S3_BUCKET", str, None, "the S3 backend's bucket")
    s3_endpoint_url: str | None = setting(
        "S3_ENDPOINT_URL", url("http", "https"), None, "the S3 backend's endpoint"
    )
    s3_region: str | None = setting("S3_REGION", str, None, "the S3 backend's region")
    aws_access_key_id: str | None = setting("AWS_ACCESS_KEY_ID", str, None, "S3 credentials")
    aws_secret_access_key: str | None = setting(
        "AWS_SECRET_ACCESS_KEY", str, None, "S3 credentials"
    )
    max_upload_bytes: int = setting(
        "MAX_UPLOAD_BYTES", integer(1, 2**40), 10 * 1024 * 1024, "largest accepted file"
    )
    max_upload_files: int = setting("MAX_UPLOAD_FILES", integer(1, 100), 5, "files per message")
    # Conversations with more than two people (DESIGN.md section 11).
    max_participants: int = setting(
        "MAX_PARTICIPANTS", integer(0, 100), 10, "people copied on a ticket besides its requester"
    )
    email_attachment_max_bytes: int = setting(
        "EMAIL_ATTACHMENT_MAX_BYTES",
        integer(0, 2**31),
        10 * 1024 * 1024,
        "a reply's files go as MIME parts while their total is at most this, else as links",
    )
    quote_history: bool = setting(
        "QUOTE_HISTORY", boolean, True, "quote the previous public message below a reply"
    )
    # The shared inbox (DESIGN.md section 12).
    agents_see_unassigned: bool = setting(
        "AGENTS_SEE_UNASSIGNED",
        boolean,
        False,
        "AGENTs also reach the unassigned tickets and may take one",
    )
    # Time (DESIGN.md section 12): the worker's scheduler.
    auto_close_after: timedelta | None = setting(
        "AUTO_CLOSE_AFTER",
        duration,
        timedelta(days=7),
        "RESOLVED tickets with no activity this long become CLOSED, with a notice; 0: never",
        shown="`7d`",
    )
    scheduler_seconds: float = setting(
        "SCHEDULER_SECONDS", seconds, 60.0, "how often the worker's scheduler runs its jobs"
    )
    # Accounts and data (DESIGN.md section 13).
    require_2fa_for: str = setting(
        "REQUIRE_2FA_FOR",
        one_of("none", "admin", "all"),
        "none",
        "whose login needs two-factor: none, ADMIN (the admins), or ALL staff",
        shown="`none`",
    )
    password_resets_per_address: int = setting(
        "PASSWORD_RESETS_PER_ADDRESS_PER_HOUR",
        integer(1, 10**6),
        10,
        "password-reset requests from one client address an hour",
    )
    password_resets_per_account: int = setting(
        "PASSWORD_RESETS_PER_ACCOUNT_PER_HOUR",
        integer(1, 10**6),
        3,
        "password-reset requests naming one address an hour, known or not (past it the "
        "answer stays the same 202; nothing is sent)",
    )
    retention_after: timedelta | None = setting(
        "RETENTION_AFTER",
        duration,
        None,
        "CLOSED tickets last changed longer ago than this are purged with their files "
        "(`365d`); 0: keep for ever",
        shown="`0`",
    )
    webhook_allow_private: bool = setting(
        "WEBHOOK_ALLOW_PRIVATE",
        boolean,
        False,
        "outgoing webhooks may target private, loopback and link-local addresses (dev, tests)",
    )
    webhook_timeout_seconds: float = setting(
        "WEBHOOK_TIMEOUT_SECONDS",
        seconds,
        10.0,
        "how long one webhook delivery may take, connecting and reading, before a retry",
    )
    webhook_max_response_bytes: int = setting(
        "WEBHOOK_MAX_RESPONSE_BYTES",
        integer(0, 10 * 1024 * 1024),
        64 * 1024,
        "a webhook receiver's answer is read up to this many bytes, the rest ignored",
    )
    # Parsing runs in a child process (mail/inbound/sandbox.py), given 0.1 s more for each MB.
    inbound_trusted_authserv_ids: tuple[str, ...] = setting(
        "INBOUND_TRUSTED_AUTHSERV_IDS",
        host_names,
        (),
        "authserv-ids whose Authentication-Results the webhook's raw messages are judged by",
    )
    inbound_parse_seconds: float = setting(
        "INBOUND_PARSE_SECONDS",
        seconds,
        3.0,
        "how long parsing one inbound email may take before it is kept unread, attached whole",
    )
    db_prepare_threshold: int | None = setting(
        "DB_PREPARE_THRESHOLD",
        prepare_threshold,
        5,
        "psycopg's prepared-statement threshold; none behind a transaction pooler",
    )
    db_pool_min_size: int = setting(
        "DB_POOL_MIN_SIZE", integer(0, 1000), 1, "database connections per process, at least"
    )
    db_pool_max_size: int = setting(
        "DB_POOL_MAX_SIZE", integer(1, 1000), 10, "database connections per process, at most"
    )
    # At most 25: inside what a request may take (supportdesk.web.server, 30 s), so that a
    # client waiting for a connection gets its 503 in time.
    db_pool_timeout: int = setting(
        "DB_POOL_TIMEOUT",
        integer(1, 25),
        10,
        "seconds a request waits for a database connection before a 503",
    )
    db_statement_timeout: int = setting(
        "DB_STATEMENT_TIMEOUT",
        integer(1, 3600),
        20,
        "seconds a web request's SQL statement may run (or wait for a lock) before a 503",
    )
    bcrypt_rounds: int = setting("BCRYPT_ROUNDS", integer(4, 31), 12, "password hashing cost")
    session_ttl_minutes: int = setting(
        "SESSION_TTL_MINUTES", integer(1, 60 * 24 * 30), 8 * 60, "how long a login lasts"
    )
    trusted_proxies: tuple[IPNetwork, ...] = setting(
        "TRUSTED_PROXIES",
        networks,
        (),
        "reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed (clients.py)",
    )
    # Failed logins are counted in Redis (ratelimit.LoginThrottle).
    login_max_failures_per_account: int = setting(
        "LOGIN_MAX_FAILURES_PER_ACCOUNT",
        integer(1, 1000),
        5,
        "failed logins of one account from one client address in the window, then 429",
    )
    login_max_failures_per_address: int = setting(
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        integer(1, 100000),
        20,
        "failed logins from one client address across accounts in the window, then 429",
    )
    login_account_slowdown_after: int = setting(
        "LOGIN_ACCOUNT_SLOWDOWN_AFTER",
        integer(1, 10**9),
        100,
        "failed logins of one account from everywhere; past it, one try per address a window",
    )
    login_window_seconds: int = setting(
        "LOGIN_WINDOW_SECONDS", integer(1, 86400), 15 * 60, "the window failed logins count in"
    )
    public_tickets_per_address: int = setting(
        "PUBLIC_TICKETS_PER_ADDRESS_PER_HOUR",
        integer(1, 10**9),
        30,
        "tickets opened without a login from one client address an hour",
    )
    public_tickets_per_requester: int = setting(
        "PUBLIC_TICKETS_PER_REQUESTER_PER_HOUR",
        integer(1, 10**9),
        10,
        "tickets opened without a login for one requester an hour",
    )
    # Acknowledgements of new tickets, by email or the public form (ratelimit.AckThrottle):
    # past a limit the ticket is opened unanswered.
    acks_per_address: int = setting(
        "ACKS_PER_ADDRESS_PER_DAY",
        integer(1, 10**6),
        5,
        "acknowledgements to one mailbox a day (address variants such as +tags count as it)",
    )
    acks_per_domain: int = setting(
        "ACKS_PER_DOMAIN_PER_HOUR", integer(1, 10**9), 50, "acknowledgements to one domain an hour"
    )
    acks_per_hour: int = setting(
        "ACKS_PER_HOUR", integer(1, 10**9), 500, "acknowledgements in all an hour"
    )
    inbound_smtp_per_client: int = setting(
        "INBOUND_SMTP_MESSAGES_PER_CLIENT_PER_HOUR",
        integer(1, 10**9),
        100,
        "messages a client may send to the inbound SMTP listener an hour, then 451",
    )
    inbound_smtp_relays: tuple[IPNetwork, ...] = setting(
        "INBOUND_SMTP_RELAYS",
        networks,
        (),
        "mail servers relaying to the inbound SMTP listener (the company's MX): not counted",
    )
    customer_replies_per_ticket: int = setting(
        "CUSTOMER_REPLIES_PER_TICKET_PER_HOUR",
        integer(1, 10**9),
        20,
        "replies on the customer's view of one ticket an hour",
    )
    customer_replies_per_address: int = setting(
        "CUSTOMER_REPLIES_PER_ADDRESS_PER_HOUR",
        integer(1, 10**9),
        60,
        "replies on customers' views of tickets from one client address an hour",
    )
    # The outbox worker (DESIGN.md section 6): retry i waits about base * 2**(i-1) seconds.
    email_retry_base_seconds: float = setting(
        "EMAIL_RETRY_BASE_SECONDS", seconds, 30.0, "the wait before an email's first retry"
    )
    email_retry_max_seconds: float = setting(
        "EMAIL_RETRY_MAX_SECONDS", seconds, 3600.0, "the longest wait between two attempts"
    )
    email_max_attempts: int = setting(
        "EMAIL_MAX_ATTEMPTS", integer(1, 100), 8, "attempts before an email is DEAD"
    )
    email_sweep_seconds: float = setting(
        "EMAIL_SWEEP_SECONDS",
        seconds,
        30.0,
        "how often the sweeper looks for emails no queue holds and for dead workers",
    )
    worker_heartbeat_seconds: float = setting(
        "WORKER_HEARTBEAT_SECONDS",
        seconds,
        10.0,
        "how often a worker writes its heartbeat; silent for three, it is dead",
    )
    # The mailbox fetcher (DESIGN.md section 10).
    imap_poll_seconds: float = setting(
        "IMAP_POLL_SECONDS",
        seconds,
        60.0,
        "how often a mailbox whose server has no IMAP IDLE is polled for new mail",
    )
    imap_timeout_seconds: float = setting(
        "IMAP_TIMEOUT_SECONDS",
        seconds,
        30.0,
        "how long the fetcher waits for an IMAP server to answer before it tries again later",
    )
    imap_retry_max_seconds: float = setting(
        "IMAP_RETRY_MAX_SECONDS",
        seconds,
        300.0,
        "the longest wait between two attempts to reach a mailbox that fails",
    )
    dev_mailbox_dir: Path = setting(
        "DEV_MAILBOX_DIR",
        Path,
        PROJECT_ROOT / "var" / "mail",
        "where the development mailbox (`supportdesk dev-mailbox`) keeps what it receives",
    )

    # OAuth 2.0 for mailboxes (DESIGN.md section 10): one app registration per provider.
    # CUSTOM has no defaults: any other provider, or a test's own authorization server.
    oauth_microsoft_client_id: str | None = setting(
        "OAUTH_MICROSOFT_CLIENT_ID", str, None, "the Entra ID app's Application (client) ID"
    )
    oauth_microsoft_client_secret: str | None = setting(
        "OAUTH_MICROSOFT_CLIENT_SECRET", str, None, "the Entra ID app's client secret (its Value)"
    )
    oauth_microsoft_authorize_url: str = setting(
        "OAUTH_MICROSOFT_AUTHORIZE_URL",
        url("https", "http"),
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "Microsoft's authorization endpoint (a tenant id in place of `common` pins one tenant)",
    )
    oauth_microsoft_token_url: str = setting(
        "OAUTH_MICROSOFT_TOKEN_URL",
        url("https", "http"),
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "Microsoft's token endpoint",
    )
    oauth_microsoft_scopes: str = setting(
        "OAUTH_MICROSOFT_SCOPES",
        str,
        "offline_access https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send",
        "the scopes asked of Microsoft, separated by spaces",
    )
    oauth_google_client_id: str | None = setting(
        "OAUTH_GOOGLE_CLIENT_ID", str, None, "the Google Cloud OAuth client's ID"
    )
    oauth_google_client_secret: str | None = setting(
        "OAUTH_GOOGLE_CLIENT_SECRET", str, None, "the Google Cloud OAuth client's secret"
    )
    oauth_google_authorize_url: str = setting(
        "OAUTH_GOOGLE_AUTHORIZE_URL",
        url("https", "http"),
        "https://accounts.google.com/o/oauth2/v2/auth",
        "Google's authorization endpoint",
    )
    oauth_google_token_url: str = setting(
        "OAUTH_GOOGLE_TOKEN_URL",
        url("https", "http"),
        "https://oauth2.googleapis.com/token",
        "Google's token endpoint",
    )
    oauth_google_scopes: str = setting(
        "OAUTH_GOOGLE_SCOPES",
        str,
        "https://mail.google.com/",
        "the scopes asked of Google, separated by spaces",
    )
    oauth_custom_client_id: str | None = setting(
        "OAUTH_CUSTOM_CLIENT_ID", str, None, "another OAuth provider's client ID"
    )
    oauth_custom_client_secret: str | None = setting(
        "OAUTH_CUSTOM_CLIENT_SECRET", str, None, "another OAuth provider's client secret"
    )
    oauth_custom_authorize_url: str | None = setting(
        "OAUTH_CUSTOM_AUTHORIZE_URL",
        url("https", "http"),
        None,
        "another OAuth provider's authorization endpoint",
    )
    oauth_custom_token_url: str | None = setting(
        "OAUTH_CUSTOM_TOKEN_URL", url("https", "http"), None, "another provider's token endpoint"
    )
    oauth_custom_scopes: str = setting(
        "OAUTH_CUSTOM_SCOPES", str, "", "the scopes asked of another provider", shown="none"
    )

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def support_address(self) -> str:
        """The bare address of MAIL_FROM: `support@example.com`."""
        return _bare_address(self.mail_from)

    @property
    def sender_name(self) -> str:
        """The display name of MAIL_FROM (`Support` in `Support <support@example.com>`), or
        "" when it has none."""
        return parseaddr(self.mail_from)[0]

    @property
    def from_header(self) -> str:
        """The From of the desk's own email: MAIL_FROM's name, else the company's, and the
        support address (`Acme Support <support@example.com>`)."""
        return formataddr((self.sender_name or self.company_name, self.support_address))

    @property
    def mail_domain(self) -> str:
        """The domain of the support address: the right-hand side of our Message-IDs."""
        return self.support_address.rsplit("@", 1)[-1]

    @property
    def secure_cookies(self) -> bool:
        """Cookies are `Secure` except where the app is served over plain http locally."""
        return self.environment == "production"

    def oauth_provider(self, name: str) -> OAuthProvider:
        """The endpoints and client of one OAuth provider (MICROSOFT, GOOGLE, CUSTOM)."""
        prefix = f"oauth_{name.lower()}_"
        values = {part: getattr(self, prefix + part) for part in OAuthProvider.PARTS}
        # Google issues a refresh token only when asked for offline access, and again on
        # a second consent only with prompt=consent.
        extra = {"access_type": "offline", "prompt": "consent"} if name == "GOOGLE" else {}
        return OAuthProvider(
            name=name,
            client_id=values["client_id"],
            client_secret=values["client_secret"],
            authorize_url=values["authorize_url"],
            token_url=values["token_url"],
            scopes=tuple(values["scopes"].split()),
            redirect_uri=f"{self.public_base_url}/oauth/callback",
            authorize_params=extra,
            # Microsoft wants the scopes again on a refresh; Google's refresh takes none.
            scopes_on_refresh=name != "GOOGLE",
        )

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
        """Build and validate settings from a mapping of environment names to strings: every
        problem is collected, then reported together."""
        given: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for name, declared in SETTINGS.items():
            raw = values.get(declared.env, "").strip()
            if not raw:
                continue  # the default
            try:
                given[name] = declared.read(raw)
            except BadValue as bad:
                problems[declared.env] = str(bad)
        settings = cls(**given)
        if settings.environment == "production":
            for name, declared in SETTINGS.items():
                missing = name not in given and declared.env not in problems
                if declared.required_in_production and missing:
                    problems[declared.env] = "is required"
        elif "secret_key" not in given:
            settings = settings.replace(secret_key=development_secret_key(DEV_SECRET_KEY_FILE))
        if values.get("ACKS_PER_ADDRESS_PER_HOUR", "").strip():
            problems["ACKS_PER_ADDRESS_PER_HOUR"] = (
                "was renamed ACKS_PER_ADDRESS_PER_DAY (acknowledgements to one address in 24 hours)"
            )
        problems = _cross_field_problems(settings) | problems
        if problems:
            raise ConfigError(problems)
        return settings

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class OAuthProvider:
    """One OAuth 2.0 provider as the settings describe it (`Settings.oauth_provider`)."""

    PARTS = ("client_id", "client_secret", "authorize_url", "token_url", "scopes")

    name: str
    client_id: str | None
    client_secret: str | None
    authorize_url: str | None
    token_url: str | None
    scopes: tuple[str, ...]
    redirect_uri: str
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    scopes_on_refresh: bool = True

    def missing(self) -> list[str]:
        """The settings still to be set before this provider can be used."""
        needed = ("client_id", "authorize_url", "token_url")
        return [f"OAUTH_{self.name}_{p.upper()}" for p in needed if not getattr(self, p)]


# Each setting's declaration, by the name of its field.
SETTINGS: dict[str, Setting[Any]] = {
    each.name: each.metadata["setting"] for each in dataclasses.fields(Settings)
}


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


def _cross_field_problems(settings: Settings) -> dict[str, str]:
    """What no one value shows: each value was read (or defaulted), and they disagree."""
    problems: dict[str, str] = {}
    if len(settings.secret_key) < MIN_SECRET_KEY:
        problems["SECRET_KEY"] = f"must be at least {MIN_SECRET_KEY} characters"
    if settings.storage_backend == "s3" and not settings.s3_bucket:
        problems["S3_BUCKET"] = "is required when STORAGE_BACKEND is s3"
    if settings.storage_backend == "s3" and settings.max_upload_bytes > S3_MAX_PUT_BYTES:
        problems["MAX_UPLOAD_BYTES"] = (
            f"must be at most 5 GiB ({S3_MAX_PUT_BYTES}) when STORAGE_BACKEND is s3:"
            " each file is stored with one PUT"
        )
    if settings.inbound_parse_seconds > MAX_INBOUND_PARSE_SECONDS:
        problems["INBOUND_PARSE_SECONDS"] = (
            f"must be at most {MAX_INBOUND_PARSE_SECONDS}: the webhook answers within the "
            "30 s a request may take (supportdesk.web.server)"
        )
    if settings.db_pool_min_size > settings.db_pool_max_size:
        problems["DB_POOL_MIN_SIZE"] = "must not exceed DB_POOL_MAX_SIZE"
    if settings.email_retry_base_seconds > settings.email_retry_max_seconds:
        problems["EMAIL_RETRY_BASE_SECONDS"] = "must not exceed EMAIL_RETRY_MAX_SECONDS"
    if settings.environment == "production":
        for name in ("MICROSOFT", "GOOGLE", "CUSTOM"):
            for part in ("AUTHORIZE_URL", "TOKEN_URL"):
                value = getattr(settings, f"oauth_{name.lower()}_{part.lower()}")
                if value and not value.lower().startswith("https://"):
                    problems[f"OAUTH_{name}_{part}"] = "must be an https:// URL in production"
    if bool(settings.smtp_username) != bool(settings.smtp_password):
        missing = "SMTP_PASSWORD" if settings.smtp_username else "SMTP_USERNAME"
        problems[missing] = "SMTP_USERNAME and SMTP_PASSWORD are set together"
    return problems
