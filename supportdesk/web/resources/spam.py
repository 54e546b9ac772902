"""Bulk actions, spam and blocked senders (DESIGN.md section 12): the JSON API and pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import falcon

from supportdesk.core.errors import BadRequest, Conflict, ValidationFailed
from supportdesk.tickets.bulk import BulkService, parse_bulk, summary, summary_query
from supportdesk.tickets.inputs import TicketFilters, form_number, parse_filters
from supportdesk.tickets.service import TicketService, public_ticket
from supportdesk.tickets.spam import (
    BlockedSenders,
    SpamService,
    parse_blocked_sender,
    public_blocked_sender,
)
from supportdesk.web.resources.common import Pages, form_data, form_failed, json_object
from supportdesk.web.resources.tickets import TicketsPage

if TYPE_CHECKING:
    from supportdesk.web.services import Services


def _public_result(result: dict[str, Any]) -> dict[str, Any]:
    if "ticket" in result:
        return result | {"ticket": public_ticket(result["ticket"])}
    return result


class TicketsBulkResource:
    def __init__(self, bulk: BulkService):
        self.bulk = bulk

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        results = self.bulk.run(req.context.user, parse_bulk(json_object(req)))
        resp.media = {"results": [_public_result(r) for r in results]}


class TicketSpamResource:
    def __init__(self, spam: SpamService):
        self.spam = spam

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        ticket, changed = self.spam.mark(req.context.user, pid)
        resp.media = {"ticket": public_ticket(ticket), "changed": changed}


class BlockedSendersResource:
    def __init__(self, blocked: BlockedSenders):
        self.blocked = blocked

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [public_blocked_sender(row) for row in self.blocked.list()]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        row = self.blocked.add(req.context.user, parse_blocked_sender(json_object(req)))
        resp.status = falcon.HTTP_201
        resp.media = {"blocked_sender": public_blocked_sender(row)}


class BlockedSenderResource:
    def __init__(self, blocked: BlockedSenders):
        self.blocked = blocked

    def on_delete(self, req: falcon.Request, resp: falcon.Response, blocked_id: int) -> None:
        self.blocked.remove(blocked_id)
        resp.status = falcon.HTTP_204


# --- pages -----------------------------------------------------------------------------------


def _bulk_form(form: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The list page's bulk form in the JSON shape: the ticked rows (or, with "all on this
    page", every row the page listed) and the one `change` select, `action:value`."""

    def many(name: str) -> list[Any]:
        value = raw.get(name, [])
        return value if isinstance(value, list) else [value]

    pids = many("page_pids") if form.get("all") else many("pids")
    if not pids:
        raise ValidationFailed({"pids": "Tick one or more tickets first."})
    action, _, value = str(form.get("change", "")).partition(":")
    if action == "assign":
        return {
            "pids": pids,
            "action": action,
            "value": None if value == "none" else form_number(value),
        }
    if action == "spam":
        return {"pids": pids, "action": action, "value": None}
    return {"pids": pids, "action": action, "value": value}


class TicketsBulkPage:
    """The list page's bulk form: the action on the ticked tickets, then back to the same
    list with the summary ("12 changed, 1 not found"); a refused form shows the list again
    with what was wrong."""

    def __init__(self, bulk: BulkService, tickets: TicketService, list_page: TicketsPage):
        self.bulk = bulk
        self.tickets = tickets
        self.list_page = list_page

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        raw = req.get_media(default_when_empty={})
        filters = self._filters(str(form.get("back", "")))
        back = urlencode(filters.as_query() | {"page": filters.page, "per_page": filters.per_page})
        try:
            results = self.bulk.run(req.context.user, parse_bulk(_bulk_form(form, raw)))
        except ValidationFailed as error:
            form_failed(req, resp, error, self._show, filters=filters)
            return
        raise falcon.HTTPSeeOther(f"/tickets?{back}&{summary_query(summary(results))}")

    @staticmethod
    def _filters(back: str) -> TicketFilters:
        try:
            return parse_filters(dict(parse_qsl(back)))
        except (ValidationFailed, BadRequest, ValueError):
            return TicketFilters()

    def _show(self, req, resp, *, filters, status, errors, message) -> None:
        self.list_page.render_list(
            req, resp, filters=filters, status=status, errors=errors, message=message
        )


class TicketSpamPage:
    def __init__(self, spam: SpamService):
        self.spam = spam

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        form_data(req)  # a form, or a 415
        self.spam.mark(req.context.user, pid)
        raise falcon.HTTPSeeOther(f"/tickets/{pid}?notice=spam")


class BlockedSendersPage:
    def __init__(self, blocked: BlockedSenders, pages: Pages):
        self.blocked = blocked
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.show(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        try:
            pattern = parse_blocked_sender({"pattern": form.get("pattern", "")})
            self.blocked.add(req.context.user, pattern)
        except (ValidationFailed, Conflict) as error:
            form_failed(req, resp, error, self.show, form=form)
            return
        raise falcon.HTTPSeeOther("/blocked-senders?notice=added")

    def show(self, req, resp, *, status=200, errors=None, message=None, form=None) -> None:
        notice = {"added": "Blocked.", "removed": "Unblocked."}.get(req.get_param("notice") or "")
        self.pages.render(
            req,
            resp,
            "blocked_senders.html",
            status=status,
            items=self.blocked.list(),
            errors=errors or {},
            message=message,
            form=form or {},
            notice=notice,
        )


class BlockedSenderDeletePage:
    def __init__(self, blocked: BlockedSenders):
        self.blocked = blocked

    def on_post(self, req: falcon.Request, resp: falcon.Response, blocked_id: int) -> None:
        form_data(req)
        self.blocked.remove(blocked_id)
        raise falcon.HTTPSeeOther("/blocked-senders?notice=removed")


def build(services: Services) -> dict[str, object]:
    bulk, spam, blocked = services.bulk, services.spam, services.blocked_senders
    list_page = TicketsPage(services.tickets, services.staff, services.pages)
    return {
        "tickets_bulk": TicketsBulkResource(bulk),
        "ticket_spam": TicketSpamResource(spam),
        "blocked_senders": BlockedSendersResource(blocked),
        "blocked_sender": BlockedSenderResource(blocked),
        "tickets_bulk_page": TicketsBulkPage(bulk, services.tickets, list_page),
        "ticket_spam_page": TicketSpamPage(spam),
        "blocked_senders_page": BlockedSendersPage(blocked, services.pages),
        "blocked_sender_delete_page": BlockedSenderDeletePage(blocked),
    }
