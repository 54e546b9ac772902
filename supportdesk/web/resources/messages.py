"""The conversation: the JSON API of a ticket's messages, an email's original HTML for the
page's sandboxed frame, and the reply box of the page."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import falcon

from supportdesk.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from supportdesk.files.uploads import UploadLimits
from supportdesk.tickets.inputs import (
    form_list,
    form_number,
    message_from_form,
    parse_new_message,
)
from supportdesk.tickets.messages import MessageService, public_message
from supportdesk.tickets.service import public_ticket
from supportdesk.web.resources.common import (
    FormInput,
    api_input,
    form_failed,
    is_multipart,
    read_form,
)
from supportdesk.web.resources.tickets import SAVED_FILE_FIELD, TicketPage

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class TicketMessagesResource:
    def __init__(self, messages: MessageService, limits: UploadLimits):
        self.messages = messages
        self.limits = limits

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        thread = self.messages.thread(req.context.user, pid)
        resp.media = {
            "items": [
                public_message(m, thread.ticket, thread.attachments.get(m["id"], []))
                for m in thread.messages
            ]
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        with api_input(req, self.limits) as form:
            posted = self.messages.post(
                req.context.user,
                pid,
                parse_new_message(_message_fields(req, form)),
                channel="API",
                uploads=form.uploads,
            )
        resp.status = falcon.HTTP_201
        resp.location = f"/api/tickets/{pid}/messages"
        resp.media = {
            "message": public_message(posted.message, posted.ticket, posted.attachments),
            "ticket": public_ticket(posted.ticket),
            "newer_messages": posted.newer_messages,
        }


# The original email's document (DESIGN.md section 11): sanitized already
# (mail/inbound/original_html.py); this policy is the second layer. `sandbox` gives it an
# opaque origin with no script, no form and no plugin, whatever it holds; popups only so
# that a link the reader clicks opens in a new tab (rel=noopener noreferrer), as in a mail
# client. Nothing loads but `data:` images and inline styles; only our pages may frame it.
ORIGINAL_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
ORIGINAL_HEADERS = {
    "Content-Security-Policy": ORIGINAL_POLICY,
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
}
# Ours, around the email's markup: readable type, images and tables within the frame, the
# notices (remote images blocked) set apart from the email.
ORIGINAL_DOCUMENT = (
    '<!doctype html><html><head><meta charset="utf-8">'
    '<meta name="referrer" content="no-referrer"><title>The original email</title>'
    "<style>body{margin:12px;font:14px/1.45 system-ui,sans-serif;color:#1f2328;"
    "background:#fff;word-wrap:break-word}img{max-width:100%;height:auto}"
    "table{max-width:100%}pre{white-space:pre-wrap}"
    ".sd-notice{margin:0 0 12px;padding:6px 10px;border:1px solid #d4a72c;"
    "background:#fff8c5;color:#3b2300;font:13px/1.4 system-ui,sans-serif}</style>"
    "</head><body>{html}</body></html>"
)


def original_document(html: str) -> str:
    """The sanitized fragment as the full document the frame shows."""
    return ORIGINAL_DOCUMENT.replace("{html}", html, 1)


class OriginalEmailResource:
    """An email's HTML as it was written, sanitized, for the ticket page's sandboxed frame."""

    def __init__(self, messages: MessageService):
        self.messages = messages

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str, message_id: int) -> None:
        html = self.messages.original_html(req.context.user, pid, message_id)
        resp.content_type = "text/html; charset=utf-8"
        resp.text = original_document(html)
        for name, value in ORIGINAL_HEADERS.items():
            resp.set_header(name, value)


class TicketReplyPage:
    """The reply box of the ticket page: a plain form POST that works without JavaScript."""

    def __init__(self, messages: MessageService, ticket_page: TicketPage, limits: UploadLimits):
        self.messages = messages
        self.ticket_page = ticket_page
        self.limits = limits

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        with read_form(req, self.limits) as form:
            chosen = _checked_saved_files(form)
            try:
                form.raise_error()
                fields = message_from_form(form.fields)
                if chosen:  # "Attach from the saved reply" (section 12), checked
                    fields["saved_reply_files"] = chosen
                new = parse_new_message(fields)
                # The service refuses a Cc it may not copy (the requester, our own address).
                posted = self.messages.post(
                    req.context.user, pid, new, channel="WEB", uploads=form.uploads
                )
            except (ValidationFailed, PayloadTooLarge, UnsupportedMediaType) as error:
                # The saved replies' files checked are offered again (the ones still usable).
                typed = form.fields | {
                    "saved_reply_files": [c for c in chosen if isinstance(c, int)]
                }
                form_failed(req, resp, error, self.ticket_page.show_reply, form=typed, pid=pid)
                return
        query = {"notice": "noted" if new.is_note else "replied"}
        if posted.newer_messages:
            query["newer"] = str(posted.newer_messages)
        raise falcon.HTTPSeeOther(
            f"/tickets/{pid}?{urlencode(query)}#message-{posted.message['id']}"
        )


def _message_fields(req: falcon.Request, form: FormInput) -> dict[str, object]:
    """A multipart API message's fields are all text: its id is a number there, its `cc` a
    repeated field or addresses separated by commas (a list in JSON), and its
    `saved_reply_files` a repeated field of ids."""
    fields = form.fields
    if not is_multipart(req):
        return fields
    if "last_seen_message_id" in fields:
        fields = fields | {"last_seen_message_id": form_number(fields["last_seen_message_id"])}
    if "cc" in fields:
        fields = fields | {"cc": form_list(form.repeated["cc"])}
    if "saved_reply_files" in fields:
        ids = [form_number(v) for v in form.repeated["saved_reply_files"] if v.strip()]
        fields = fields | {"saved_reply_files": ids}
    return fields


def _checked_saved_files(form: FormInput) -> list[object]:
    """The reply box's checked "Attach from the saved reply" boxes: each a number (what is
    not one is kept as it came, for the parser to refuse)."""
    values = form.repeated.get(SAVED_FILE_FIELD)
    if values is None:  # a urlencoded form: one value at most is kept
        values = [form.fields[SAVED_FILE_FIELD]] if SAVED_FILE_FIELD in form.fields else []
    return [form_number(v) for v in values if v.strip()]


def build(services: Services) -> dict[str, object]:
    return {
        "ticket_messages": TicketMessagesResource(services.messages, services.upload_limits),
        "ticket_message_original": OriginalEmailResource(services.messages),
        "ticket_reply_page": TicketReplyPage(
            services.messages, TicketPage.build(services), services.upload_limits
        ),
    }
