"""Reading the audit log (DESIGN.md section 13): `GET /api/audit` and the Audit log page, for
ADMINs. Writing it is `accounts/audit.py`.

The log grows without bound, so a page is found by keyset, never by OFFSET: newest first by
(`at`, `id`), and each page's `next_cursor` names the last row it showed, from which the
next page reads on down the index (`audit_log_at_idx`, or the actor's or action's index when
filtered by them). A row written meanwhile shows on the first page, never twice.

Filters: `actor` (a user id), `action` (one, or several separated by commas), `from` and
`to` (an ISO date, or a date and time; without an offset it is UTC). A date as `to` means
the whole of that day.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from supportdesk.core.db import Database, queries
from supportdesk.core.fields import QUERY_INTEGER, Field, Kind, Query
from supportdesk.core.paging import PER_PAGE
from supportdesk.core.text import Problems
from supportdesk.core.vocabulary import AUDIT_ACTION_LABELS, AUDIT_ACTIONS

_audit_page = queries.audit_page

Row = Mapping[str, Any]

# --- the filters -----------------------------------------------------------------------------


def _actions(field: Field, value: str, problems: Problems, _: Mapping[str, Any]) -> Any:
    """One action or several, comma-separated, case-insensitively; each once, in order."""
    found: list[str] = []
    for part in value.split(","):
        action = part.strip().upper()
        if action not in AUDIT_ACTIONS:
            problems[field.name] = f"{part.strip()[:40]!r} is not an action of the audit log."
            return None
        if action not in found:
            found.append(action)
    return tuple(found)


def _moment(field: Field, value: str, problems: Problems, _: Mapping[str, Any]) -> Any:
    """An ISO date (`2026-12-07`) or date and time (`2026-12-07T14:05:00+01:00`; UTC when
    no offset is given), as the first moment it names (`from`) or the first moment after it
    (`to`: a date is its whole day, a time that instant): the range is [from, to)."""
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(), UTC)
            after = timedelta(days=1)
        else:
            moment = datetime.fromisoformat(value)
            after = timedelta(microseconds=1)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment + after if field.name == "to" else moment
    except (ValueError, OverflowError):  # not a date; or past the year 9999
        problems[field.name] = "Use an ISO date (2026-12-07) or date and time (2026-12-07T14:05Z)."
        return None


def _cursor(field: Field, value: str, problems: Problems, _: Mapping[str, Any]) -> Any:
    """A page's `next_cursor`: the (`at`, `id`) of the last row it showed."""
    try:
        at, _, row_id = base64.urlsafe_b64decode(value.encode("ascii")).decode().partition("/")
        position = (datetime.fromisoformat(at), int(row_id))
    except (ValueError, UnicodeError, binascii.Error):
        position = None
    if position is None or position[0].tzinfo is None or not 0 < position[1] < 2**63:
        problems[field.name] = "Use the next_cursor of a page of this list."
        return None
    return position


def encode_cursor(row: Row) -> str:
    return base64.urlsafe_b64encode(f"{row['at'].isoformat()}/{row['id']}".encode()).decode()


ACTIONS = Kind({"type": "string"}, _actions)
MOMENT = Kind({"type": "string"}, _moment)
CURSOR = Kind({"type": "string"}, _cursor)


def _in_order(values: Mapping[str, Any], problems: Problems) -> None:
    since, before = values.get("from"), values.get("to")
    if since is not None and before is not None and since >= before:
        problems["to"] = "Give a moment after `from`."


AUDIT_FILTERS = Query(
    (
        Field("actor", QUERY_INTEGER, minimum=1, maximum=10**18 - 1, description="a user id"),
        Field(
            "action",
            ACTIONS,
            description="one action, or several separated by commas: " + ", ".join(AUDIT_ACTIONS),
        ),
        Field("from", MOMENT, description="from this ISO date or date-time on (UTC if no offset)"),
        Field(
            "to",
            MOMENT,
            description="up to this ISO date (the whole day) or date-time (UTC if no offset)",
        ),
        Field("cursor", CURSOR, description="the next_cursor of the page before"),
        PER_PAGE,
    ),
    across=_in_order,
)


@dataclass(frozen=True)
class AuditFilters:
    actor: int | None = None
    action: tuple[str, ...] | None = None
    since: datetime | None = None
    before: datetime | None = None
    cursor: tuple[datetime, int] | None = None
    per_page: int = 25


def parse_audit_filters(params: Mapping[str, Any]) -> AuditFilters:
    """The filters of a query string, or a 422 naming each one at fault."""
    values = AUDIT_FILTERS.parse(params)
    return AuditFilters(
        actor=values["actor"],
        action=values["action"],
        since=values["from"],
        before=values["to"],
        cursor=values["cursor"],
        per_page=values["per_page"],
    )


# --- the page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    items: list[Row]
    next_cursor: str | None  # None: this is the last page


def public_entry(row: Row) -> dict[str, Any]:
    actor = None
    if row["actor_id"] is not None:
        actor = {"id": row["actor_id"], "name": row["actor_name"], "email": row["actor_email"]}
    target = None
    if row["target_type"] is not None:
        target = {"type": row["target_type"], "id": row["target_id"]}
    return {
        "id": row["id"],
        "at": row["at"].isoformat(),
        "action": row["action"],
        "label": AUDIT_ACTION_LABELS[row["action"]],
        "actor": actor,
        "subject": row["subject"],
        "target": target,
        "client_ip": row["client_ip"],
        "request_id": row["request_id"],
        "data": row["data"],
    }


class AuditLog:
    def __init__(self, db: Database):
        self.db = db

    def page(self, filters: AuditFilters) -> AuditPage:
        """One page, newest first; one row more than a page is read to know if another
        follows."""
        after_at, after_id = filters.cursor or (None, None)
        with self.db.transaction() as conn:
            rows = _audit_page(
                conn,
                actor_id=filters.actor,
                actions=list(filters.action) if filters.action else None,
                since=filters.since,
                before=filters.before,
                after_at=after_at,
                after_id=after_id,
                limit=filters.per_page + 1,
            )
        items = rows[: filters.per_page]
        more = len(rows) > filters.per_page
        return AuditPage(items, encode_cursor(items[-1]) if more else None)
