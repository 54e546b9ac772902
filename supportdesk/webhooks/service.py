"""Outgoing webhooks as an ADMIN manages them (DESIGN.md section 13): registrations with
their URL, events and signing secret (sealed at rest like a mailbox's password, never
returned), each change audited; their recent deliveries; a retry of a DEAD one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from supportdesk.accounts.audit import Origin, record
from supportdesk.core.db import Database, queries
from supportdesk.core.errors import Conflict, NotFound, ValidationFailed
from supportdesk.core.fields import CHOICE, FLAG, Body, Field, Kind, Query
from supportdesk.core.paging import PAGE, PER_PAGE, not_too_deep
from supportdesk.core.text import Problems
from supportdesk.core.vocabulary import MAX_URL, OUTBOX_STATUSES, WEBHOOK_EVENTS
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.webhooks.queue import push_after_commit
from supportdesk.webhooks.targets import (
    AddressResolver,
    TargetRefused,
    checked_addresses,
    parse_target,
)

_list_webhooks = queries.list_webhooks
_webhook_by_id = queries.webhook_by_id
_insert_webhook = queries.insert_webhook
_update_webhook = queries.update_webhook
_delete_webhook = queries.delete_webhook
_list_deliveries = queries.list_webhook_deliveries
_delivery = queries.webhook_delivery
_retry_dead = queries.retry_dead_webhook_delivery

Row = Mapping[str, Any]
MIN_SECRET = 16
MAX_SECRET = 200


# --- the fields -----------------------------------------------------------------------------


def _url(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or not value.strip():
        problems[field.name] = field.message
        return None
    try:
        parse_target(value.strip())
    except TargetRefused as refused:
        problems[field.name] = str(refused)
        return None
    return value.strip()


def _events(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A list of event names (a page's form: its ticked boxes), each once, in our order."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems[field.name] = field.message
        return None
    unknown = sorted({v for v in value if v not in WEBHOOK_EVENTS})
    if unknown:
        problems[field.name] = f"Unknown event {unknown[0]!r}: use {', '.join(WEBHOOK_EVENTS)}."
        return None
    return [event for event in WEBHOOK_EVENTS if event in value]


def _secret(field: Field, value: Any, problems: Problems, _: Mapping[str, Any]) -> Any:
    if (
        not isinstance(value, str)
        or not MIN_SECRET <= len(value) <= MAX_SECRET
        or not value.isascii()
        or not value.isprintable()
    ):
        problems[field.name] = field.message
        return None
    return value


URL = Kind({"type": "string", "format": "uri", "maxLength": MAX_URL}, _url)
EVENTS = Kind(
    {
        "type": "array",
        "items": {"type": "string", "enum": list(WEBHOOK_EVENTS)},
        "minItems": 1,
        "uniqueItems": True,
    },
    _events,
)
SIGNING_SECRET = Kind(
    {"type": "string", "minLength": MIN_SECRET, "maxLength": MAX_SECRET, "writeOnly": True},
    _secret,
)

_FIELDS = (
    Field("url", URL, "Enter an https:// or http:// URL.", description="where to POST"),
    Field("events", EVENTS, f"Choose at least one of {', '.join(WEBHOOK_EVENTS)}."),
    Field(
        "secret",
        SIGNING_SECRET,
        f"Use {MIN_SECRET} to {MAX_SECRET} printable ASCII characters.",
        description="the HMAC-SHA256 key of X-Signature; never shown again",
    ),
    Field("active", FLAG, "Must be true or false.", description="false: nothing is queued"),
)
NEW_WEBHOOK = Body(
    "NewWebhook",
    tuple(
        Field(f.name, f.kind, f.message, required=f.name != "active", description=f.description)
        for f in _FIELDS
    ),
)
WEBHOOK_CHANGE = Body("WebhookChange", _FIELDS, at_least_one="Change at least one field.")
DELIVERY_FILTERS = Query(
    (Field("status", CHOICE, choices=OUTBOX_STATUSES, description="one status"), PAGE, PER_PAGE),
    across=not_too_deep,
)


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def public_webhook(row: Row) -> dict[str, Any]:
    """A webhook as the API and the page show it: never its secret."""
    return {
        "id": row["id"],
        "url": row["url"],
        "events": list(row["events"]),
        "active": row["active"],
        "dead": row["dead"],
        "undelivered": row["undelivered"],
        "created_at": _when(row["created_at"]),
        "updated_at": _when(row["updated_at"]),
    }


def public_delivery(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "webhook_id": row["webhook_id"],
        "event": row["event"],
        "ticket": row["pid"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_error": row["last_error"],
        "response_status": row["response_status"],
        "next_attempt_at": _when(row["next_attempt_at"]),
        "last_attempt_at": _when(row["last_attempt_at"]),
        "sent_at": _when(row["sent_at"]),
        "created_at": _when(row["created_at"]),
    }


# --- the service ----------------------------------------------------------------------------


class WebhookService:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        secrets: SecretBox,
        resolver: AddressResolver,
        *,
        allow_private: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.redis = redis_client
        self.secrets = secrets
        self.resolver = resolver
        self.allow_private = allow_private
        self.clock = clock

    def list(self) -> list[Row]:
        with self.db.transaction() as conn:
            return _list_webhooks(conn)

    def get(self, webhook_id: int) -> Row:
        with self.db.transaction() as conn:
            row = _webhook_by_id(conn, id=webhook_id)
        if row is None:
            raise NotFound("No such webhook.")
        return row

    def create(self, data: Mapping[str, Any], origin: Origin, *, strict: bool = True) -> Row:
        values = NEW_WEBHOOK.parse(data, strict=strict)
        self._check_target(values["url"])
        now = self.clock()
        with self.db.transaction() as conn:
            webhook_id = _insert_webhook(
                conn,
                url=values["url"],
                events=values["events"],
                secret_encrypted=self.secrets.seal(values["secret"]),
                active=True if values["active"] is None else values["active"],
                created_by=origin.actor_id,
                now=now,
            )["id"]
            record(
                conn,
                "WEBHOOK_CREATED",
                origin,
                target=("webhook", webhook_id),
                data={"url": values["url"], "events": values["events"]},
                now=now,
            )
            return _webhook_by_id(conn, id=webhook_id)

    def update(
        self, webhook_id: int, data: Mapping[str, Any], origin: Origin, *, strict: bool = True
    ) -> Row:
        values = WEBHOOK_CHANGE.parse(data, strict=strict)
        if values["url"] is not None:
            self._check_target(values["url"])
        now = self.clock()
        with self.db.transaction() as conn:
            updated = _update_webhook(
                conn,
                id=webhook_id,
                url=values["url"],
                events=values["events"],
                secret_encrypted=self.secrets.seal(values["secret"]) if values["secret"] else None,
                active=values["active"],
                now=now,
            )
            if updated is None:
                raise NotFound("No such webhook.")
            changed = {k: v for k, v in values.items() if v is not None and k != "secret"}
            if values["secret"]:
                changed["secret"] = "changed"  # never the secret itself
            record(
                conn,
                "WEBHOOK_UPDATED",
                origin,
                target=("webhook", webhook_id),
                data=changed,
                now=now,
            )
            return _webhook_by_id(conn, id=webhook_id)

    def delete(self, webhook_id: int, origin: Origin) -> None:
        now = self.clock()
        with self.db.transaction() as conn:
            deleted = _delete_webhook(conn, id=webhook_id)
            if deleted is None:
                raise NotFound("No such webhook.")
            record(
                conn,
                "WEBHOOK_DELETED",
                origin,
                target=("webhook", webhook_id),
                data={"url": deleted["url"]},
                now=now,
            )

    def deliveries(self, webhook_id: int, params: Mapping[str, Any]) -> list[Row]:
        """A webhook's deliveries, newest first."""
        filters = DELIVERY_FILTERS.parse(params)
        with self.db.transaction() as conn:
            if _webhook_by_id(conn, id=webhook_id) is None:
                raise NotFound("No such webhook.")
            return _list_deliveries(
                conn,
                webhook_id=webhook_id,
                status=filters["status"],
                limit=filters["per_page"],
                offset=(filters["page"] - 1) * filters["per_page"],
            )

    def retry(self, delivery_id: int) -> Row:
        """A DEAD delivery back to PENDING with fresh attempts and onto the queue; 409 for
        any other status."""
        with self.db.transaction() as conn:
            retried = _retry_dead(conn, id=delivery_id, now=self.clock())
            delivery = _delivery(conn, id=delivery_id)
        if delivery is None:
            raise NotFound("No such delivery.")
        if retried is None:
            raise Conflict(
                f"Only a delivery that gave up can be retried; this one is {delivery['status']}.",
                details={"status": delivery["status"]},
            )
        self.db.after_commit(push_after_commit, self.redis, [delivery_id])
        return delivery

    def _check_target(self, url: str) -> None:
        """The URL's addresses as they resolve now: a 422 naming what is refused."""
        try:
            checked_addresses(parse_target(url), self.resolver, allow_private=self.allow_private)
        except TargetRefused as refused:
            raise ValidationFailed({"url": str(refused)}, str(refused)) from None
