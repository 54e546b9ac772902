"""What each staff member wants mailed (DESIGN.md section 12): the four notices of
tickets/notifications.py, each on or off. New tickets are off by default (they would
flood a team), the others on (v1 always sent them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supportdesk.core.db import Database, queries
from supportdesk.core.errors import NotFound
from supportdesk.core.fields import FLAG, Body, Field

_notification_preferences = queries.notification_preferences
_set_notification_preferences = queries.set_notification_preferences

_BOOLEAN = "Must be true or false."
NOTIFICATION_PREFERENCES = Body(
    "NotificationPreferences",
    (
        Field("new_ticket", FLAG, _BOOLEAN, required=True,
              description="every new ticket one may see (default false)"),
        Field("customer_reply", FLAG, _BOOLEAN, required=True,
              description="a customer reply on a ticket one is assigned or follows"),
        Field("assigned", FLAG, _BOOLEAN, required=True,
              description="a ticket assigned to one by someone else"),
        Field("mentioned", FLAG, _BOOLEAN, required=True,
              description="a mention (`@login` or `@email`) in an internal note"),
    ),
)  # fmt: skip


def public_preferences(row: Mapping[str, Any]) -> dict[str, bool]:
    return {
        "new_ticket": row["notify_new_ticket"],
        "customer_reply": row["notify_customer_reply"],
        "assigned": row["notify_assigned"],
        "mentioned": row["notify_mentioned"],
    }


def preferences_from_form(form: Mapping[str, Any]) -> dict[str, bool]:
    """The page's checkboxes in the API's shape: a box not ticked is not sent at all."""
    return {field.name: form.get(field.name) == "on" for field in NOTIFICATION_PREFERENCES.fields}


class PreferenceService:
    def __init__(self, db: Database):
        self.db = db

    def get(self, user: Mapping[str, Any]) -> dict[str, bool]:
        with self.db.transaction() as conn:
            row = _notification_preferences(conn, id=user["id"])
        if row is None:
            raise NotFound("No such staff member.")
        return public_preferences(row)

    def replace(self, user: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, bool]:
        """All four at once (ValidationFailed naming each missing or non-boolean one)."""
        values = NOTIFICATION_PREFERENCES.parse(data)
        with self.db.transaction() as conn:
            row = _set_notification_preferences(conn, id=user["id"], **values)
        if row is None:
            raise NotFound("No such staff member.")
        return public_preferences(row)
