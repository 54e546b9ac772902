"""Merge and split (DESIGN.md section 12): the JSON API and the ticket page's forms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.core.errors import ValidationFailed
from supportdesk.tickets.merging import MergeService, TargetNotFound, parse_merge
from supportdesk.tickets.service import public_ticket
from supportdesk.web.resources.common import form_data, form_failed, json_object
from supportdesk.web.resources.tickets import TicketPage

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class TicketMergeResource:
    """`POST /api/tickets/{pid}/merge {into}` -> 200 {ticket: the target, merged: the source}."""

    def __init__(self, merging: MergeService):
        self.merging = merging

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        merged = self.merging.merge(req.context.user, pid, parse_merge(json_object(req)))
        resp.media = {
            "ticket": public_ticket(merged.target),
            "merged": public_ticket(merged.source),
        }


class MessageSplitResource:
    """`POST /api/tickets/{pid}/messages/{id}/split` -> 201 {ticket: the new one, source}."""

    def __init__(self, merging: MergeService):
        self.merging = merging

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, pid: str, message_id: int
    ) -> None:
        split = self.merging.split(req.context.user, pid, message_id)
        resp.status = falcon.HTTP_201
        resp.location = f"/api/tickets/{split.target['pid']}"
        resp.media = {"ticket": public_ticket(split.target), "source": public_ticket(split.source)}


class TicketMergePage:
    """The "Merge into…" form: on to the target's page; a refused or unknown number is said
    on the ticket's page again, by the form."""

    def __init__(self, merging: MergeService, ticket_page: TicketPage):
        self.merging = merging
        self.ticket_page = ticket_page

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        try:
            into = parse_merge({"into": form_data(req).get("into", "")})
            merged = self.merging.merge(req.context.user, pid, into)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.ticket_page.show, pid=pid)
            return
        except TargetNotFound as missing:
            refused = ValidationFailed({"into": missing.message}, missing.message)
            form_failed(req, resp, refused, self.ticket_page.show, pid=pid)
            return
        raise falcon.HTTPSeeOther(f"/tickets/{merged.target['pid']}?notice=merged")


class MessageSplitPage:
    """The "Split into a new ticket" button of a customer's message: on to the new ticket."""

    def __init__(self, merging: MergeService, ticket_page: TicketPage):
        self.merging = merging
        self.ticket_page = ticket_page

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, pid: str, message_id: int
    ) -> None:
        form_data(req)  # a form, like every page's (its CSRF token was checked already)
        try:
            split = self.merging.split(req.context.user, pid, message_id)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.ticket_page.show, pid=pid)
            return
        raise falcon.HTTPSeeOther(f"/tickets/{split.target['pid']}?notice=split")


def build(services: Services) -> dict[str, object]:
    merging = services.merging
    ticket_page = TicketPage.build(services)
    return {
        "ticket_merge": TicketMergeResource(merging),
        "message_split": MessageSplitResource(merging),
        "ticket_merge_page": TicketMergePage(merging, ticket_page),
        "message_split_page": MessageSplitPage(merging, ticket_page),
    }
