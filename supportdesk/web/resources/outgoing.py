"""The New email page: a staff member writes to a customer, which opens a ticket
(DESIGN.md section 11; the API is `POST /api/tickets` with `to`, in resources/tickets.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from supportdesk.files.uploads import UploadLimits
from supportdesk.tickets.outgoing import OutgoingService, parse_staff_email, staff_email_from_form
from supportdesk.web.resources.common import Pages, form_failed, read_form

if TYPE_CHECKING:
    from supportdesk.web.services import Services

FIELDS = ("to", "cc", "subject", "body", "mailbox_id")


class NewEmailPage:
    """To, Cc, Subject, Mailbox, the message and files; on success, the new ticket's page.
    A plain form POST that works without JavaScript."""

    def __init__(self, outgoing: OutgoingService, pages: Pages, limits: UploadLimits):
        self.outgoing = outgoing
        self.pages = pages
        self.limits = limits

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._render(req, resp, form={"to": req.get_param("to") or ""}, errors={})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        with read_form(req, self.limits) as form:
            values = {name: form.fields.get(name, "") for name in FIELDS}
            try:
                form.raise_error()  # a refused file: the text is kept, files are chosen again
                new = parse_staff_email(staff_email_from_form(values), strict=False)
                ticket = self.outgoing.start(
                    req.context.user, new, channel="WEB", uploads=form.uploads
                )
            except (ValidationFailed, PayloadTooLarge, UnsupportedMediaType) as error:
                form_failed(req, resp, error, self._render, form=values)
                return
        raise falcon.HTTPSeeOther(f"/tickets/{ticket['pid']}?notice=emailed")

    def _render(self, req, resp, *, form, errors, status=200, message=None) -> None:
        self.pages.render(
            req,
            resp,
            "new_email.html",
            status=status,
            form=form,
            errors=errors,
            message=message,
            mailboxes=self.outgoing.sending_mailboxes(),
            limits=self.limits,
        )


def build(services: Services) -> dict[str, object]:
    return {
        "new_email_page": NewEmailPage(services.outgoing, services.pages, services.upload_limits)
    }
