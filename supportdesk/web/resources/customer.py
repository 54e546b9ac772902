"""The customer's view of their ticket (`/t/<pid>?expires=…&sig=…`, from their emails):
its status and PUBLIC conversation, and a reply box with files. The signed link is the
only key: the middleware checks it (a wrong or expired one is a 404 page), and a form
posted back to it needs no other token, since nobody else can make that link."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.core.errors import AppError
from supportdesk.core.signing import SignedLinks
from supportdesk.core.vocabulary import STATUS_LABELS
from supportdesk.files.uploads import IMAGES, UploadLimits
from supportdesk.mail.outbound.compose import VIEW_DAYS, VIEW_PURPOSE
from supportdesk.tickets.customer_replies import CustomerReplies, TicketClosed
from supportdesk.tickets.inputs import parse_customer_reply
from supportdesk.tickets.merging import MergeService
from supportdesk.tickets.messages import author_name
from supportdesk.web.resources.common import Pages, form_failed, read_form

if TYPE_CHECKING:
    from supportdesk.web.services import Services

FILE_LINK_DAYS = 1  # the file links on the page are made afresh each time it is shown
# The page's own address is its key: never sent on as a Referer, not even to this site
# (the other headers of a private page come with every response: SecurityHeaders).
PRIVATE_PAGE = {"Referrer-Policy": "no-referrer"}


class CustomerTicketPage:
    def __init__(
        self,
        customers: CustomerReplies,
        pages: Pages,
        links: SignedLinks,
        limits: UploadLimits,
        merging: MergeService,
    ):
        self.customers = customers
        self.pages = pages
        self.links = links
        self.limits = limits
        self.merging = merging

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        resp.set_headers(PRIVATE_PAGE)
        # A merged ticket's conversation is in its target now: its view, by a fresh link.
        moved_to = self.merging.customer_view_moved_to(pid)
        if moved_to is not None:
            link = self.links.query(VIEW_PURPOSE, moved_to, VIEW_DAYS)
            raise falcon.HTTPSeeOther(f"/t/{moved_to}?{link}", headers=PRIVATE_PAGE)
        self.show(req, resp, pid, notice=req.get_param("notice") == "sent")

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        resp.set_headers(PRIVATE_PAGE)
        thread = self.customers.public_thread(pid)
        if thread.ticket["status"] == "CLOSED":
            raise TicketClosed(thread.ticket)  # checked again, under a lock, by add()
        with read_form(req, self.limits) as form:
            try:
                form.raise_error()
                body = parse_customer_reply(form.fields)
            except AppError as error:
                form_failed(req, resp, error, self.show, form=form.fields, pid=pid)
                return
            self.customers.reply_on_web(
                thread.ticket, body, form.uploads, req.context.client_address
            )
        here = req.relative_uri.split("&notice=", 1)[0]
        raise falcon.HTTPSeeOther(f"{here}&notice=sent#reply")

    def show(
        self, req, resp, pid, *, form=None, errors=None, message=None, status=200, notice=False
    ):
        """The page; after a refused reply, the reply as typed with the field messages by
        it (which say all that `message` would)."""
        thread = self.customers.public_thread(pid)
        self.pages.render(
            req,
            resp,
            "customer_ticket.html",
            status=status,
            thread=thread,
            ticket=thread.ticket,
            # A participant's message under their name, not the requester's (section 11).
            author_name=author_name,
            statuses=STATUS_LABELS,
            file_url=lambda f: (
                f"/api/attachments/{f['id']}?"
                + self.links.query("attachment", str(f["id"]), FILE_LINK_DAYS)
            ),
            images=IMAGES,
            limits=self.limits,
            form_action=req.relative_uri.split("&notice=", 1)[0],
            reply=form or {},
            errors=errors or {},
            notice=notice,
        )


def build(services: Services) -> dict[str, object]:
    return {
        "customer_ticket_page": CustomerTicketPage(
            services.customers,
            services.pages,
            services.links,
            services.upload_limits,
            services.merging,
        )
    }
