"""The Outbox: deliveries by status with attempts and errors, and a retry (ADMIN only)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import falcon

from supportdesk.core.errors import Conflict, ValidationFailed
from supportdesk.core.vocabulary import EMAIL_KIND_LABELS, OUTBOX_STATUS_LABELS
from supportdesk.mail.outbound.deliveries import (
    COUNT_CAP,
    DeliveryService,
    OutboxFilters,
    parse_outbox_filters,
    public_delivery,
)
from supportdesk.web.resources.common import Pages, form_failed

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class OutboxResource:
    def __init__(self, deliveries: DeliveryService):
        self.deliveries = deliveries

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.deliveries.list(parse_outbox_filters(req.params))
        resp.media = {
            "items": [public_delivery(d) for d in page.items],
            "page": page.filters.page,
            "per_page": page.filters.per_page,
            "total": page.total,
            "total_capped": page.total_capped,
            "counts": {status: min(n, COUNT_CAP) for status, n in page.counts.items()},
        }


class OutboxRetryResource:
    def __init__(self, deliveries: DeliveryService):
        self.deliveries = deliveries

    def on_post(self, req: falcon.Request, resp: falcon.Response, outbox_id: int) -> None:
        resp.media = {"delivery": public_delivery(self.deliveries.retry(outbox_id))}


class OutboxPage:
    def __init__(self, deliveries: DeliveryService, pages: Pages):
        self.deliveries = deliveries
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            filters = parse_outbox_filters(req.params)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.show, filters=OutboxFilters())
            return
        self.show(req, resp, filters)

    def show(
        self, req, resp, filters: OutboxFilters, *, message=None, errors=None, status=200
    ) -> None:
        """The list; after refused filters, the message over it (the filters start again,
        so `errors` have no field to stand by)."""

        def link(**over: object) -> str:
            query = {"status": filters.status, "page": filters.page} | over
            return "/outbox?" + urlencode({k: v for k, v in query.items() if v})

        retried = req.get_param("retried") or ""
        notice = None
        if retried.isascii() and retried.isdigit():
            notice = f"Delivery {retried} is queued again."
        self.pages.render(
            req,
            resp,
            "outbox.html",
            status=status,
            page=self.deliveries.list(filters),
            filters=filters,
            statuses=OUTBOX_STATUS_LABELS,
            kinds=EMAIL_KIND_LABELS,
            cap=COUNT_CAP,
            link=link,
            message=message,
            notice=notice,
        )


class OutboxRetryPage:
    def __init__(self, deliveries: DeliveryService, page: OutboxPage):
        self.deliveries = deliveries
        self.page = page

    def on_post(self, req: falcon.Request, resp: falcon.Response, outbox_id: int) -> None:
        try:
            self.deliveries.retry(outbox_id)
        except Conflict as error:  # not (or no longer) failed; a missing one is the 404 page
            form_failed(req, resp, error, self.page.show, filters=OutboxFilters(status="DEAD"))
            return
        raise falcon.HTTPSeeOther(f"/outbox?status=DEAD&retried={outbox_id}")


def build(services: Services) -> dict[str, object]:
    deliveries = services.deliveries
    page = OutboxPage(deliveries, services.pages)
    return {
        "outbox": OutboxResource(deliveries),
        "outbox_retry": OutboxRetryResource(deliveries),
        "outbox_page": page,
        "outbox_retry_page": OutboxRetryPage(deliveries, page),
    }
