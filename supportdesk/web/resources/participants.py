"""The people copied on a ticket (DESIGN.md section 11): the JSON API and the page's forms."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import falcon

from supportdesk.core.errors import ValidationFailed
from supportdesk.tickets.inputs import parse_new_participant, participant_from_form
from supportdesk.tickets.participant_service import ParticipantService
from supportdesk.tickets.participants import public_participant
from supportdesk.web.resources.common import form_data, form_failed, json_object
from supportdesk.web.resources.tickets import TicketPage

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class TicketParticipantsResource:
    def __init__(self, participants: ParticipantService):
        self.participants = participants

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        people = self.participants.of(req.context.user, pid)
        resp.media = {"items": [public_participant(p) for p in people]}

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        email, name = parse_new_participant(json_object(req))
        copied = self.participants.add(req.context.user, pid, email, name)
        resp.status = falcon.HTTP_201 if copied.created else falcon.HTTP_200
        resp.media = {"participant": public_participant(copied.participant)}


class TicketParticipantResource:
    def __init__(self, participants: ParticipantService):
        self.participants = participants

    def on_delete(self, req: falcon.Request, resp: falcon.Response, pid: str, email: str) -> None:
        self.participants.remove(req.context.user, pid, email)
        resp.status = falcon.HTTP_204


class TicketParticipantsPage:
    """The page's "Copy someone" form (a plain POST that works without JavaScript)."""

    def __init__(self, participants: ParticipantService, ticket_page: TicketPage):
        self.participants = participants
        self.ticket_page = ticket_page

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        form = form_data(req)
        try:
            email, name = parse_new_participant(participant_from_form(form))
            self.participants.add(req.context.user, pid, email, name)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.ticket_page.show, form=form, pid=pid)
            return
        raise falcon.HTTPSeeOther(f"/tickets/{pid}?{urlencode({'notice': 'copied'})}#copied")


class TicketParticipantRemovePage:
    """A participant's "Remove" button on the page."""

    def __init__(self, participants: ParticipantService):
        self.participants = participants

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        email = form_data(req).get("email")
        self.participants.remove(req.context.user, pid, email if isinstance(email, str) else "")
        raise falcon.HTTPSeeOther(f"/tickets/{pid}?{urlencode({'notice': 'uncopied'})}#copied")


def build(services: Services) -> dict[str, object]:
    participants = services.participants
    return {
        "ticket_participants": TicketParticipantsResource(participants),
        "ticket_participant": TicketParticipantResource(participants),
        "ticket_participants_page": TicketParticipantsPage(
            participants, TicketPage.build(services)
        ),
        "ticket_participant_remove_page": TicketParticipantRemovePage(participants),
    }
