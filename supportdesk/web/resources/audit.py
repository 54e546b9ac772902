"""The audit log (ADMIN only): `GET /api/audit` and the Audit log page, with the same
filters (a GET form: it works without JavaScript, and a filtered page can be bookmarked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import falcon

from supportdesk.accounts.audit_log import (
    AUDIT_FILTERS,
    AuditLog,
    AuditPage,
    parse_audit_filters,
    public_entry,
)
from supportdesk.accounts.staff import StaffService
from supportdesk.core.errors import ValidationFailed
from supportdesk.core.vocabulary import AUDIT_ACTION_LABELS
from supportdesk.web.resources.common import Pages, form_failed

if TYPE_CHECKING:
    from supportdesk.web.services import Services

# The page's filters, as typed (the cursor is the pagination's, not the form's).
FILTER_NAMES = tuple(field.name for field in AUDIT_FILTERS.fields)
FORM_NAMES = ("actor", "action", "from", "to")


class AuditResource:
    def __init__(self, audit_log: AuditLog):
        self.audit_log = audit_log

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        filters = parse_audit_filters(req.params)
        page = self.audit_log.page(filters)
        resp.media = {
            "items": [public_entry(row) for row in page.items],
            "per_page": filters.per_page,
            "next_cursor": page.next_cursor,
        }


class AuditPageResource:
    def __init__(self, audit_log: AuditLog, staff: StaffService, pages: Pages):
        self.audit_log = audit_log
        self.staff = staff
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        typed = {name: req.params[name] for name in FILTER_NAMES if req.params.get(name)}
        try:
            filters = parse_audit_filters(req.params)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.show, typed=typed, page=None)
            return
        self.show(req, resp, typed=typed, page=self.audit_log.page(filters))

    def show(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        *,
        typed: dict[str, Any],
        page: AuditPage | None,
        errors: dict[str, str] | None = None,
        message: str | None = None,
        status: int = 200,
    ) -> None:
        """The form as typed and the page it found; after refused filters, their errors
        beside them and no list (a list unfiltered would pass for the one asked for)."""
        kept = {k: v for k, v in typed.items() if k != "cursor" and isinstance(v, str)}
        newest = "/audit?" + urlencode(kept) if kept else "/audit"
        older = None
        if page is not None and page.next_cursor:
            older = "/audit?" + urlencode(kept | {"cursor": page.next_cursor})
        self.pages.render(
            req,
            resp,
            "audit.html",
            status=status,
            page=page,
            form={name: kept.get(name, "") for name in FORM_NAMES},
            errors=errors or {},
            message=message,
            staff=self.staff.list_users(),
            labels=AUDIT_ACTION_LABELS,
            newest=newest if "cursor" in typed else None,
            older=older,
        )


def build(services: Services) -> dict[str, object]:
    return {
        "audit": AuditResource(services.audit_log),
        "audit_page": AuditPageResource(services.audit_log, services.staff, services.pages),
    }
