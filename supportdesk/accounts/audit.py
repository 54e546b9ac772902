"""The audit log (DESIGN.md section 13): who did what to accounts and data.

Every part of the desk that changes an account, a credential, a mailbox, a webhook or a
customer's data records it here with `record`, in the same transaction as the change, so the
row exists exactly when the change does. A failed login has no transaction of its own to
join: it is recorded in one of its own (`record_alone`). The app role may only append to
`audit_log` (core/migrate.py APPEND_ONLY); reading it is `GET /api/audit` (ADMIN).

Never write a customer's address or name into `subject`, `target_id` or `data`: an erasure
names its customer by `customer_key`, a keyed hash, so the log survives the erasure it
records without undoing it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from supportdesk.core.db import Database, queries
from supportdesk.core.vocabulary import AUDIT_ACTIONS

_insert_audit = queries.insert_audit


@dataclass(frozen=True)
class Origin:
    """Where an action came from: the acting staff member (None: the system, or nobody
    known), the client's address and the request id. `Origin.of(req)` in the web layer,
    `SYSTEM` for the scheduler and the CLI."""

    actor_id: int | None = None
    client_ip: str | None = None
    request_id: str | None = None


SYSTEM = Origin()


def record(
    conn: psycopg.Connection,
    action: str,
    origin: Origin,
    *,
    target: tuple[str, int | str] | None = None,
    subject: str | None = None,
    data: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Append one row in the caller's transaction; returns its id. `target` is what the
    action was done to (`("user", 42)`); `subject` the address a failed login typed."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    target_type, target_id = target if target is not None else (None, None)
    row = _insert_audit(
        conn,
        at=now or datetime.now(UTC),
        action=action,
        actor_id=origin.actor_id,
        subject=subject[:254] if subject else None,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        client_ip=origin.client_ip,
        request_id=origin.request_id,
        data=Jsonb(dict(data or {})),
    )
    return row["id"]


def record_alone(db: Database, action: str, origin: Origin, **fields: Any) -> int:
    """`record` in a transaction of its own (a failed login: nothing else is written)."""
    with db.transaction() as conn:
        return record(conn, action, origin, **fields)


def customer_key(secret_key: str, email: str) -> str:
    """A customer's address as the audit log may name it: an HMAC under the desk's key, the
    same for the same address (so an auditor holding the address can find its rows) and
    meaningless without it."""
    digest = hmac.new(
        secret_key.encode(), b"audit-customer:" + email.strip().lower().encode(), hashlib.sha256
    )
    return digest.hexdigest()[:32]
