"""The quarantine (ADMIN only): the emails that opened no ticket, a ticket opened from one,
and one discarded; the JSON API and the page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import falcon

from supportdesk.core.errors import ValidationFailed
from supportdesk.mail.inbound.quarantine import (
    COUNT_CAP,
    QuarantineFilters,
    QuarantineService,
    parse_quarantine_filters,
    parse_quarantine_ticket,
    public_quarantined,
)
from supportdesk.web.resources.common import Pages, form_data, form_failed, json_object
from supportdesk.web.resources.inbound import public_received

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class QuarantineResource:
    def __init__(self, quarantine: QuarantineService):
        self.quarantine = quarantine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.quarantine.list(parse_quarantine_filters(req.params))
        resp.media = {
            "items": [public_quarantined(row) for row in page.items],
            "page": page.filters.page,
            "per_page": page.filters.per_page,
            "total": page.total,
            "total_capped": page.total_capped,
        }


class QuarantinedResource:
    def __init__(self, quarantine: QuarantineService):
        self.quarantine = quarantine

    def on_delete(self, req: falcon.Request, resp: falcon.Response, quarantine_id: int) -> None:
        self.quarantine.discard(quarantine_id)
        resp.status = falcon.HTTP_204


class QuarantineTicketResource:
    def __init__(self, quarantine: QuarantineService):
        self.quarantine = quarantine

    def on_post(self, req: falcon.Request, resp: falcon.Response, quarantine_id: int) -> None:
        requester = parse_quarantine_ticket(json_object(req))
        received = self.quarantine.open_ticket(quarantine_id, requester)
        resp.status = falcon.HTTP_200 if received.outcome == "duplicate" else falcon.HTTP_201
        resp.media = public_received(received)


class QuarantinePage:
    def __init__(self, quarantine: QuarantineService, pages: Pages):
        self.quarantine = quarantine
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            filters = parse_quarantine_filters(req.params)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.show, filters=QuarantineFilters())
            return
        self.show(req, resp, filters)

    def show(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        filters: QuarantineFilters,
        *,
        message: str | None = None,
        errors: dict[str, str] | None = None,
        failed_id: int | None = None,
        form: dict[str, Any] | None = None,
        status: int = 200,
    ) -> None:
        """The list; after a refused form, its message by the email it was for."""

        def link(**over: object) -> str:
            return "/quarantine?" + urlencode({"page": filters.page} | over)

        self.pages.render(
            req,
            resp,
            "quarantine.html",
            status=status,
            page=self.quarantine.list(filters),
            filters=filters,
            cap=COUNT_CAP,
            link=link,
            notice=_notice(req),
            message=message,
            errors=errors or {},
            failed_id=failed_id,
            form=form or {},
        )


def _notice(req: falcon.Request) -> str | None:
    opened, discarded = req.get_param("opened") or "", req.get_param("discarded") or ""
    if opened and opened.isascii() and opened.replace("-", "").isdigit():
        return f"The email is in ticket {opened} now."
    if discarded.isascii() and discarded.isdigit():
        return "The email was discarded."
    return None


class QuarantineTicketPage:
    def __init__(self, quarantine: QuarantineService, page: QuarantinePage):
        self.quarantine = quarantine
        self.page = page

    def on_post(self, req: falcon.Request, resp: falcon.Response, quarantine_id: int) -> None:
        form = form_data(req)
        try:
            requester = parse_quarantine_ticket(
                {"requester_email": form.get("requester_email", "")}
            )
            received = self.quarantine.open_ticket(quarantine_id, requester)
        except ValidationFailed as error:  # a missing one is the 404 page
            form_failed(
                req,
                resp,
                error,
                self.page.show,
                form=form,
                filters=QuarantineFilters(),
                failed_id=quarantine_id,
            )
            return
        raise falcon.HTTPSeeOther(f"/quarantine?{urlencode({'opened': received.ticket_pid})}")


class QuarantineDiscardPage:
    def __init__(self, quarantine: QuarantineService):
        self.quarantine = quarantine

    def on_post(self, req: falcon.Request, resp: falcon.Response, quarantine_id: int) -> None:
        self.quarantine.discard(quarantine_id)
        raise falcon.HTTPSeeOther(f"/quarantine?discarded={quarantine_id}")


def build(services: Services) -> dict[str, object]:
    quarantine = services.quarantine
    page = QuarantinePage(quarantine, services.pages)
    return {
        "quarantine": QuarantineResource(quarantine),
        "quarantined": QuarantinedResource(quarantine),
        "quarantine_ticket": QuarantineTicketResource(quarantine),
        "quarantine_page": page,
        "quarantine_ticket_page": QuarantineTicketPage(quarantine, page),
        "quarantine_discard_page": QuarantineDiscardPage(quarantine),
    }
