"""Managing the company's mailboxes (DESIGN.md section 10; ADMIN only): add, list, edit,
delete and test the connection.

Secrets (the IMAP password, an SMTP password) are sealed before they are written and never
leave this module: what goes out says only whether one is set (`public_mailbox`). Deleting
a mailbox only stops fetching it: its tickets stay and answer from MAIL_FROM. An OAUTH2
mailbox gets its tokens from the OAuth flow (`/mailboxes/{id}/oauth/start`), not from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from supportdesk.accounts.audit import Origin, record
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Conflict, NotFound, ValidationFailed
from supportdesk.core.fields import CHOICE, EMAIL, FLAG, INTEGER, LINE, Body, Field, Kind
from supportdesk.core.text import Problems
from supportdesk.core.vocabulary import MAIL_SECURITIES, MAILBOX_AUTHS, OAUTH_PROVIDERS
from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.probe import ConnectionFailed, Folder, check_connection
from supportdesk.mail.mailboxes.secrets import SecretBox

_list_mailboxes = queries.list_mailboxes
_mailbox_by_id = queries.mailbox_by_id
_lock_mailbox = queries.lock_mailbox
_insert_mailbox = queries.insert_mailbox
_update_mailbox = queries.update_mailbox
_delete_mailbox = queries.delete_mailbox

Row = Mapping[str, Any]

# How long each step of a connection test may wait for the server: it runs in a web request.
CONNECTION_TEST_SECONDS = 8.0
MAX_SECRET = 1024
MAX_FOLDER = 200
MAX_AUTHSERV_IDS = 10

# What a provider's mailbox needs unless told otherwise: its IMAP server. (Its trusted
# authserv-ids, when the mailbox names none, are sender_auth's defaults for the provider.)
PROVIDER_DEFAULTS: dict[str, dict[str, Any]] = {
    "MICROSOFT": {"imap_host": "outlook.office365.com", "imap_port": 993, "imap_security": "SSL"},
    "GOOGLE": {"imap_host": "imap.gmail.com", "imap_port": 993, "imap_security": "SSL"},
}
DEFAULTS: dict[str, Any] = {
    "display_name": "",
    "imap_port": 993,
    "imap_security": "SSL",
    "imap_folder": "INBOX",
    "auth": "PASSWORD",
    "processed": "MARK_SEEN",
    "backfill_days": 0,
    "trusted_authserv_ids": [],
    "is_active": True,
}
# Columns that go out as they are stored; secrets never do.
PUBLIC_COLUMNS = (
    "id", "address", "display_name", "imap_host", "imap_port", "imap_security", "imap_folder",
    "auth", "username", "oauth_provider", "smtp_host", "smtp_port", "smtp_security",
    "smtp_username", "processed", "backfill_days", "trusted_authserv_ids", "is_active",
    "status", "last_error", "uidvalidity", "last_uid",
)  # fmt: skip
TIMES = ("last_fetch_at", "backfilled_at", "created_at", "updated_at")


# --- the fields (their checks and their OpenAPI schema) ------------------------------------


def _secret(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A password as typed: any characters but line breaks and NUL, spaces kept."""
    if not isinstance(value, str) or not value or len(value) > (field.max_length or 0):
        problems[field.name] = field.message
        return None
    if any(c in value for c in "\x00\r\n"):
        problems[field.name] = "A password cannot hold line breaks."
        return None
    return value


def _processed(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """MARK_SEEN, or MOVE:<folder>."""
    text = value.strip() if isinstance(value, str) else ""
    if text.upper() == "MARK_SEEN":
        return "MARK_SEEN"
    folder = text[5:].strip() if text[:5].upper() == "MOVE:" else ""
    if not folder or len(folder) > MAX_FOLDER or any(ord(c) < 32 for c in folder):
        problems[field.name] = field.message
        return None
    return f"MOVE:{folder}"


def _names(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A list of short names (authserv-ids), lower-cased, duplicates dropped."""
    if isinstance(value, str):  # a page's form: one per line or comma-separated
        value = value.replace(",", "\n").split()
    if not isinstance(value, list) or len(value) > MAX_AUTHSERV_IDS:
        problems[field.name] = field.message
        return None
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not 0 < len(item.strip()) <= 253 or " " in item.strip():
            problems[field.name] = field.message
            return None
        if item.strip().lower() not in names:
            names.append(item.strip().lower())
    return names


SECRET = Kind({"type": "string", "minLength": 1, "writeOnly": True}, _secret, ("max_length",))
PROCESSED = Kind({"type": "string", "pattern": "^(MARK_SEEN|MOVE:.+)$"}, _processed)
NAMES = Kind({"type": "array", "items": {"type": "string"}, "maxItems": MAX_AUTHSERV_IDS}, _names)

_FIELDS = (
    Field("address", EMAIL, "Enter the mailbox's email address."),
    Field("display_name", LINE, "Enter a name of at most 200 characters.", max_length=200,
          description="shown as the sender's name of replies from this address"),
    Field("imap_host", LINE, "Enter the IMAP server's name.", max_length=253,
          description="default for MICROSOFT and GOOGLE: their IMAP server"),
    Field("imap_port", INTEGER, "Use a port from 1 to 65535.", minimum=1, maximum=65535,
          description="default 993"),
    Field("imap_security", CHOICE, choices=MAIL_SECURITIES,
          description="SSL (default) or STARTTLS; NONE only in development"),
    Field("imap_folder", LINE, "Enter a folder name.", max_length=MAX_FOLDER,
          description="the folder fetched; default INBOX"),
    Field("auth", CHOICE, choices=MAILBOX_AUTHS,
          description="PASSWORD (default) or OAUTH2 (connected through the OAuth flow)"),
    Field("username", LINE, "Enter the login name.", max_length=254,
          description="default: the address"),
    Field("password", SECRET, "Enter the password.", max_length=MAX_SECRET,
          description="the IMAP password (PASSWORD mailboxes); stored encrypted, never returned"),
    Field("oauth_provider", CHOICE, choices=OAUTH_PROVIDERS, nullable=True,
          message="Choose MICROSOFT, GOOGLE or CUSTOM.",
          description="needed for OAUTH2; MICROSOFT and GOOGLE also fill in the IMAP server "
          "and the trusted authserv-ids (kept only with OAUTH2)"),
    Field("smtp_host", LINE, "Enter the SMTP server's name.", max_length=253, nullable=True,
          description="optional: this address's mail goes out through its own SMTP server; "
          "null: through the global one"),
    Field("smtp_port", INTEGER, "Use a port from 1 to 65535.", minimum=1, maximum=65535,
          nullable=True, description="default 587"),
    Field("smtp_security", CHOICE, choices=MAIL_SECURITIES, nullable=True,
          message="Choose SSL, STARTTLS or NONE.",
          description="default: SSL on port 465, else STARTTLS"),
    Field("smtp_username", LINE, "Enter the SMTP login name.", max_length=254, nullable=True,
          description="default: the IMAP login name"),
    Field("smtp_password", SECRET, "Enter the SMTP password.", max_length=MAX_SECRET,
          nullable=True, description="default: the IMAP password; never returned"),
    Field("processed", PROCESSED, "Use MARK_SEEN or MOVE:<folder>.",
          description="after import: MARK_SEEN (default) or MOVE:<folder> (made if missing)"),
    Field("backfill_days", INTEGER, "Use a number of days from 0 to 365.", minimum=0,
          maximum=365, description="on the first connection, import this many days of mail "
          "once (default 0: only mail that arrives from then on)"),
    Field("trusted_authserv_ids", NAMES, "Give at most 10 names without spaces.",
          description="whose Authentication-Results to believe; empty: the provider's "
          "(Microsoft 365 and Google Workspace)"),
    Field("is_active", FLAG, "Must be true or false.", description="false: not fetched"),
)  # fmt: skip


def _required(name: str) -> Field:
    import dataclasses

    field = next(f for f in _FIELDS if f.name == name)
    return dataclasses.replace(field, required=True)


NEW_MAILBOX = Body(
    "NewMailbox",
    tuple(_required("address") if f.name == "address" else f for f in _FIELDS),
)
MAILBOX_CHANGE = Body("MailboxChange", _FIELDS, at_least_one="Change at least one field.")


def public_mailbox(row: Row) -> dict[str, Any]:
    """A mailbox as the API and the page show it: never a secret, only whether one is set."""
    shown = {column: row[column] for column in PUBLIC_COLUMNS}
    shown |= {t: row[t].isoformat() if row[t] else None for t in TIMES}
    shown["has_password"] = row["auth"] == "PASSWORD" and bool(row["secret_encrypted"])
    shown["has_smtp_password"] = bool(row["smtp_secret_encrypted"])
    shown["oauth_connected"] = row["auth"] == "OAUTH2" and bool(row["secret_encrypted"])
    return shown


class MailboxService:
    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        login: MailboxLogin,
        *,
        plain_text_allowed: bool,
        timeout: float = 30.0,
    ):
        self.db = db
        self.secrets = secrets
        self.login = login
        self.plain_text_allowed = plain_text_allowed
        self.timeout = timeout

    def list(self) -> list[Row]:
        with self.db.transaction() as conn:
            return _list_mailboxes(conn)

    def get(self, mailbox_id: int) -> Row:
        with self.db.transaction() as conn:
            row = _mailbox_by_id(conn, id=mailbox_id)
        if row is None:
            raise NotFound("No such mailbox.")
        return row

    def create(self, data: Mapping[str, Any], origin: Origin, *, strict: bool = True) -> Row:
        given = {k: v for k, v in NEW_MAILBOX.parse(data, strict=strict).items() if v is not None}
        provider = given.get("oauth_provider")
        values = DEFAULTS | PROVIDER_DEFAULTS.get(provider or "", {}) | given
        values.setdefault("username", values["address"])
        values.setdefault("oauth_provider", None)
        for column in ("smtp_host", "smtp_port", "smtp_security", "smtp_username"):
            values.setdefault(column, None)
        row = self._sealed(values, {"secret_encrypted": None, "smtp_secret_encrypted": None})
        self._check(row)
        with self._unique(), self.db.transaction() as conn:
            mailbox = _insert_mailbox(conn, **_columns(row))
            shown = {"address": mailbox["address"], "auth": mailbox["auth"]}
            record(conn, "MAILBOX_CREATED", origin, target=("mailbox", mailbox["id"]), data=shown)
            return mailbox

    def update(
        self, mailbox_id: int, data: Mapping[str, Any], origin: Origin, *, strict: bool = True
    ) -> Row:
        changes = MAILBOX_CHANGE.parse(data, strict=strict)
        given = {k: v for k, v in changes.items() if k in data}
        with self._unique(), self.db.transaction() as conn:
            current = _lock_mailbox(conn, id=mailbox_id)
            if current is None:
                raise NotFound("No such mailbox.")
            row = self._sealed(dict(current) | given, current)
            if row["auth"] == "OAUTH2" and current["auth"] != "OAUTH2":
                row["secret_encrypted"] = None  # a password is no refresh token
            self._check(row)
            if changed := _changed_fields(current, _columns(row)):
                record(
                    conn,
                    "MAILBOX_UPDATED",
                    origin,
                    target=("mailbox", mailbox_id),
                    data={"address": current["address"], "changed": changed},
                )
            return _update_mailbox(conn, id=mailbox_id, **_columns(row))

    def delete(self, mailbox_id: int, origin: Origin) -> None:
        with self.db.transaction() as conn:
            deleted = _delete_mailbox(conn, id=mailbox_id)
            if deleted is None:
                raise NotFound("No such mailbox.")
            shown = {"address": deleted["address"]}
            record(conn, "MAILBOX_DELETED", origin, target=("mailbox", mailbox_id), data=shown)

    def test(self, mailbox_id: int) -> Folder:
        """Connect, log in and select the folder: what the server showed, or a 422 naming
        the stage that failed (connect, tls, login, folder) in words an ADMIN can act on."""
        mailbox = self.get(mailbox_id)
        try:
            return check_connection(self.login, mailbox, self.timeout)
        except ConnectionFailed as failed:
            raise ValidationFailed({failed.stage: failed.message}, failed.message) from None

    # --- rules -------------------------------------------------------------------------------

    def _sealed(self, values: dict[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
        """The row to write: a new password sealed, else the stored one kept."""
        row = _normalised(dict(values))
        password = row.pop("password", None)
        smtp_password = row.pop("smtp_password", None)
        if row["auth"] == "OAUTH2":
            password = None  # its secret is the refresh token of the OAuth flow
        row["secret_encrypted"] = (
            self.secrets.seal(password) if password else stored["secret_encrypted"]
        )
        row["smtp_secret_encrypted"] = (
            self.secrets.seal(smtp_password) if smtp_password else stored["smtp_secret_encrypted"]
        )
        if not row["smtp_host"]:
            row["smtp_secret_encrypted"] = None
        return row

    def _check(self, row: Mapping[str, Any]) -> None:
        """The rules across fields, each named by its field."""
        problems: Problems = {}
        if row["auth"] == "PASSWORD" and not row["secret_encrypted"]:
            problems["password"] = "Enter the mailbox's password."
        if row["auth"] == "OAUTH2" and not row["oauth_provider"]:
            problems["oauth_provider"] = "Choose MICROSOFT, GOOGLE or CUSTOM for OAUTH2."
        if not row.get("imap_host"):
            problems["imap_host"] = "Enter the IMAP server's name."
        for field in ("imap_security", "smtp_security"):
            if row.get(field) == "NONE" and not self.plain_text_allowed:
                problems[field] = "Plain text is allowed only in development: use SSL or STARTTLS."
        if problems:
            raise ValidationFailed(problems)

    def _unique(self) -> Any:
        return _AddressInUse()


class _AddressInUse:
    """A second mailbox with the same address is a 409 naming the field."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if isinstance(error, psycopg.errors.UniqueViolation):
            raise Conflict(
                "A mailbox with this address already exists.",
                details={"address": "Already in use."},
            ) from None


def _normalised(row: dict[str, Any]) -> dict[str, Any]:
    """What a choice implies: a PASSWORD mailbox has no OAuth provider (one given chose the
    server's defaults); an SMTP server gets port 587 and its security from its port unless
    given; without one, nothing of SMTP is kept."""
    if row.get("auth") == "PASSWORD":
        row["oauth_provider"] = None
    if row.get("smtp_host"):
        row["smtp_port"] = row.get("smtp_port") or 587
        row["smtp_security"] = row.get("smtp_security") or (
            "SSL" if row["smtp_port"] == 465 else "STARTTLS"
        )
    else:
        row.update(smtp_host=None, smtp_port=None, smtp_security=None, smtp_username=None)
        row["smtp_password"] = None
    return row


# The audit log names a changed secret by the field it came in, never by its value.
_SECRET_FIELDS = {"secret_encrypted": "password", "smtp_secret_encrypted": "smtp_password"}


def _changed_fields(current: Row, columns: Mapping[str, Any]) -> list[str]:
    """The names of the fields an edit changed, for the audit log: values stay out of it
    (a secret's above all; a new one is sealed afresh, so it differs whenever it is set)."""
    return sorted(
        _SECRET_FIELDS.get(name, name) for name, value in columns.items() if value != current[name]
    )


def _columns(row: Mapping[str, Any]) -> dict[str, Any]:
    names = (
        "address", "display_name", "imap_host", "imap_port", "imap_security", "imap_folder",
        "auth", "username", "secret_encrypted", "oauth_provider", "smtp_host", "smtp_port",
        "smtp_security", "smtp_username", "smtp_secret_encrypted", "processed",
        "backfill_days", "trusted_authserv_ids", "is_active",
    )  # fmt: skip
    return {name: row.get(name) for name in names}
