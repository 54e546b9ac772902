"""The conversation: the JSON API of a ticket's messages and the reply box of its page."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import falcon

from supportdesk.errors import ValidationFailed
from supportdesk.inputs import message_from_form, parse_new_message
from supportdesk.messages import MessageService, public_message
from supportdesk.resources.common import form_data, json_object
from supportdesk.resources.tickets import TicketPage
from supportdesk.tickets import public_ticket

if TYPE_CHECKING:
    from supportdesk.services import Services


class TicketMessagesResource:
    def __init__(self, messages: MessageService):
        self.messages = messages

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        thread = self.messages.thread(req.context.user, pid)
        resp.media = {
            "items": [
                public_message(m, thread.ticket, thread.attachments.get(m["id"], []))
                for m in thread.messages
            ]
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        new = parse_new_message(json_object(req))
        posted = self.messages.post(req.context.user, pid, new, channel="API")
        resp.status = falcon.HTTP_201
        resp.location = f"/api/tickets/{pid}/messages"
        resp.media = {
            "message": public_message(posted.message, posted.ticket, []),
            "ticket": public_ticket(posted.ticket),
            "newer_messages": posted.newer_messages,
        }


class TicketReplyPage:
    """The reply box of the ticket page: a plain form POST that works without JavaScript."""

    def __init__(self, messages: MessageService, ticket_page: TicketPage):
        self.messages = messages
        self.ticket_page = ticket_page

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        form = form_data(req)
        try:
            new = parse_new_message(message_from_form(form))
        except ValidationFailed as error:
            self.ticket_page.show(
                req, resp, pid, reply=form, reply_errors=error.fields, status=error.status
            )
            return
        posted = self.messages.post(req.context.user, pid, new, channel="WEB")
        query = {"notice": "noted" if new.is_note else "replied"}
        if posted.newer_messages:
            query["newer"] = str(posted.newer_messages)
        raise falcon.HTTPSeeOther(
            f"/tickets/{pid}?{urlencode(query)}#message-{posted.message['id']}"
        )


def build(services: Services) -> dict[str, object]:
    return {
        "ticket_messages": TicketMessagesResource(services.messages),
        "ticket_reply_page": TicketReplyPage(services.messages, TicketPage.build(services)),
    }
