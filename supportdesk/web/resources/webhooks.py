"""Outgoing webhooks (DESIGN.md section 13; ADMIN only): the JSON API and the page.

The signing secret goes in and never comes out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from supportdesk.core.errors import AppError
from supportdesk.core.vocabulary import WEBHOOK_EVENTS
from supportdesk.web.resources.common import (
    Pages,
    form_data,
    form_failed,
    json_object,
    origin_of,
)
from supportdesk.webhooks.service import WebhookService, public_delivery, public_webhook

if TYPE_CHECKING:
    from supportdesk.web.services import Services

# The deliveries the page shows under each webhook.
RECENT = 10


class WebhooksResource:
    def __init__(self, webhooks: WebhookService):
        self.webhooks = webhooks

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [public_webhook(w) for w in self.webhooks.list()]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        webhook = self.webhooks.create(json_object(req), origin_of(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/webhooks/{webhook['id']}"
        resp.media = {"webhook": public_webhook(webhook)}


class WebhookResource:
    def __init__(self, webhooks: WebhookService):
        self.webhooks = webhooks

    def on_patch(self, req: falcon.Request, resp: falcon.Response, webhook_id: int) -> None:
        webhook = self.webhooks.update(webhook_id, json_object(req), origin_of(req))
        resp.media = {"webhook": public_webhook(webhook)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, webhook_id: int) -> None:
        self.webhooks.delete(webhook_id, origin_of(req))
        resp.status = falcon.HTTP_204


class WebhookDeliveriesResource:
    def __init__(self, webhooks: WebhookService):
        self.webhooks = webhooks

    def on_get(self, req: falcon.Request, resp: falcon.Response, webhook_id: int) -> None:
        rows = self.webhooks.deliveries(webhook_id, req.params)
        resp.media = {"items": [public_delivery(d) for d in rows]}


class WebhookRetryResource:
    def __init__(self, webhooks: WebhookService):
        self.webhooks = webhooks

    def on_post(self, req: falcon.Request, resp: falcon.Response, delivery_id: int) -> None:
        resp.media = {"delivery": public_delivery(self.webhooks.retry(delivery_id))}


# --- the page ------------------------------------------------------------------------------


def _typed(form: dict[str, Any]) -> dict[str, Any]:
    """The page's form in the API's shape: a checkbox per event (`event:<name>`)."""
    return {
        "url": form.get("url", ""),
        "events": [e for e in WEBHOOK_EVENTS if form.get(f"event:{e}") == "on"],
        "secret": form.get("secret", ""),
    }


class WebhooksPage:
    """The webhooks, each with its recent deliveries (a Retry button on DEAD ones), and the
    form to register one."""

    def __init__(self, webhooks: WebhookService, pages: Pages):
        self.webhooks = webhooks
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.show(req, resp, notice=req.get_param("notice"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        try:
            self.webhooks.create(_typed(form), origin_of(req), strict=False)
        except AppError as error:
            shown = {k: v for k, v in form.items() if k != "secret"}
            form_failed(req, resp, error, self.show, form=shown)
            return
        raise falcon.HTTPSeeOther("/webhooks?notice=added")

    def show(self, req, resp, *, form=None, errors=None, message=None, notice=None,
             status=200) -> None:  # fmt: skip
        webhooks = [
            public_webhook(w)
            | {
                "recent": [
                    public_delivery(d)
                    for d in self.webhooks.deliveries(w["id"], {"per_page": str(RECENT)})
                ]
            }
            for w in self.webhooks.list()
        ]
        self.pages.render(
            req,
            resp,
            "webhooks.html",
            status=status,
            webhooks=webhooks,
            events=WEBHOOK_EVENTS,
            form=form or {},
            errors=errors or {},
            message=message,
            notice=notice,
        )


class WebhookDeletePage:
    def __init__(self, webhooks: WebhookService):
        self.webhooks = webhooks

    def on_post(self, req: falcon.Request, resp: falcon.Response, webhook_id: int) -> None:
        self.webhooks.delete(webhook_id, origin_of(req))
        raise falcon.HTTPSeeOther("/webhooks?notice=deleted")


class WebhookRetryPage:
    def __init__(self, webhooks: WebhookService):
        self.webhooks = webhooks

    def on_post(self, req: falcon.Request, resp: falcon.Response, delivery_id: int) -> None:
        self.webhooks.retry(delivery_id)
        raise falcon.HTTPSeeOther("/webhooks?notice=retried")


def build(services: Services) -> dict[str, object]:
    webhooks = services.webhooks
    return {
        "webhooks": WebhooksResource(webhooks),
        "webhook": WebhookResource(webhooks),
        "webhook_deliveries": WebhookDeliveriesResource(webhooks),
        "webhook_delivery_retry": WebhookRetryResource(webhooks),
        "webhooks_page": WebhooksPage(webhooks, services.pages),
        "webhook_delete_page": WebhookDeletePage(webhooks),
        "webhook_retry_page": WebhookRetryPage(webhooks),
    }
