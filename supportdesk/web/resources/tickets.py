"""Tickets: the JSON API, the public form and the staff pages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import falcon

from supportdesk.accounts.staff import StaffService
from supportdesk.core.errors import (
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    ValidationFailed,
)
from supportdesk.core.signing import sign, signature_valid
from supportdesk.core.text import WHOLE_NUMBER
from supportdesk.core.vocabulary import PRIORITY_LABELS, STATUS_LABELS, is_manager
from supportdesk.files.uploads import IMAGES, UploadLimits
from supportdesk.tickets.assignment import AssignmentService
from supportdesk.tickets.bulk import summary_text
from supportdesk.tickets.following import FollowService
from supportdesk.tickets.inputs import (
    TicketFilters,
    assignment_from_form,
    form_number,
    parse_assignment,
    parse_filters,
    parse_new_ticket,
    parse_ticket_change,
    ticket_change_from_form,
)
from supportdesk.tickets.messages import MessageService, author_name
from supportdesk.tickets.outgoing import OutgoingService, parse_staff_email, writes_first
from supportdesk.tickets.participant_service import ParticipantService
from supportdesk.tickets.participants import public_participant
from supportdesk.tickets.saved_replies import SavedReplies
from supportdesk.tickets.saved_reply_files import SavedReplyFiles
from supportdesk.tickets.service import TicketService, public_ticket
from supportdesk.tickets.spam import KeptAway
from supportdesk.tickets.timeline import public_event
from supportdesk.web.resources.common import (
    Pages,
    api_input,
    form_data,
    form_failed,
    is_multipart,
    json_object,
    read_form,
)

if TYPE_CHECKING:
    from supportdesk.web.services import Services

CONFIRMATION = "ticket-confirmation"
# The confirmation without a number: the public form from a blocked address (tickets/spam.py).
RECEIVED = "received"
# What the ticket page says after a form it redirected from (`?notice=`).
NOTICES = {
    "updated": "Saved.",
    "assigned": "Assignment saved.",
    "taken": "You took this ticket: it is assigned to you.",
    "replied": "Reply sent: the customer is emailed.",
    "noted": "Internal note added.",
    "emailed": "Email sent: the ticket waits for the customer's answer.",
    "copied": "Copied: they get the replies from now on.",
    "uncopied": "No longer copied: they get no more replies.",
    "merged": "Merged: the other ticket's conversation is now part of this one.",
    "split": "A new ticket was opened from that message.",
    "spam": "Marked as spam: the ticket is closed and its sender is blocked.",
    "followed": "You follow this ticket: its customer replies are emailed to you.",
    "unfollowed": "You no longer follow this ticket.",
}


# --- JSON API --------------------------------------------------------------------------------


class TicketsResource:
    def __init__(self, tickets: TicketService, outgoing: OutgoingService, limits: UploadLimits):
        self.tickets = tickets
        self.outgoing = outgoing
        self.limits = limits

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page = self.tickets.list(req.context.user, parse_filters(req.params))
        resp.media = {
            "items": [public_ticket(t) for t in page.items],
            "page": page.filters.page,
            "per_page": page.filters.per_page,
            "total": page.total,
            "total_capped": page.total_capped,
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The public form's request, or (staff, with `to`) an email to a customer."""
        user = req.context.user
        with api_input(req, self.limits) as form:
            if writes_first(form.fields, user):
                new = parse_staff_email(_staff_fields(req, form.fields))
                ticket = self.outgoing.start(user, new, channel="API", uploads=form.uploads)
            else:
                try:
                    ticket = self.tickets.create(
                        parse_new_ticket(form.fields),
                        channel="API",
                        actor=user,
                        address=req.context.client_address,
                        uploads=form.uploads,
                    )
                except KeptAway:  # a blocked address: received, and nothing more said
                    resp.status = falcon.HTTP_202
                    resp.media = {"ticket": None}
                    return
        resp.status = falcon.HTTP_201
        resp.location = f"/api/tickets/{ticket['pid']}"
        resp.media = {"ticket": public_ticket(ticket)}


def _staff_fields(req: falcon.Request, fields: dict[str, object]) -> dict[str, object]:
    """A multipart body's fields are all text: its mailbox id is a number there."""
    if not is_multipart(req) or "mailbox_id" not in fields:
        return fields
    return fields | {"mailbox_id": form_number(fields["mailbox_id"])}


class TicketResource:
    def __init__(self, tickets: TicketService, participants: ParticipantService):
        self.tickets = tickets
        self.participants = participants

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        ticket = self.tickets.get(req.context.user, pid)
        # Beside the ticket, not in it: lists and other answers carry tickets without them.
        people = self.participants.of(req.context.user, pid)
        resp.media = {
            "ticket": public_ticket(ticket),
            "participants": [public_participant(p) for p in people],
        }

    def on_patch(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        change = parse_ticket_change(json_object(req))
        resp.media = {"ticket": public_ticket(self.tickets.update(req.context.user, pid, change))}


class TicketAssignResource:
    def __init__(self, assignment: AssignmentService):
        self.assignment = assignment

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        assignment = parse_assignment(json_object(req))
        ticket = self.assignment.assign(req.context.user, pid, assignment)
        resp.media = {"ticket": public_ticket(ticket)}


class TicketTakeResource:
    """Take a ticket: assign it to oneself (409 if someone else took it first)."""

    def __init__(self, assignment: AssignmentService):
        self.assignment = assignment

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        resp.media = {"ticket": public_ticket(self.assignment.take(req.context.user, pid))}


class TicketEventsResource:
    def __init__(self, tickets: TicketService):
        self.tickets = tickets

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        resp.media = {
            "items": [public_event(e) for e in self.tickets.timeline(req.context.user, pid)]
        }


# --- pages -------------------------------------------------------------------------------------


def age(moment: datetime, now: datetime | None = None) -> str:
    """ "4 min", "3 h", "12 d": how long ago, for a table column."""
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return "just now"


class PublicFormPage:
    """The public page where a customer (or staff, on a customer's behalf) opens a ticket."""

    FIELDS = ("name", "email", "subject", "body", "priority")

    def __init__(self, tickets: TicketService, pages: Pages, secret_key: str, limits: UploadLimits):
        self.tickets = tickets
        self.pages = pages
        self.secret_key = secret_key
        self.limits = limits

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._render(req, resp, form={"priority": "NORMAL"}, errors={})

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        with read_form(req, self.limits) as form:
            values = {field: form.fields.get(field, "") for field in self.FIELDS}
            try:
                form.raise_error()  # a refused file: the text is kept, files are chosen again
                new = parse_new_ticket(values, strict=False)
            except (ValidationFailed, PayloadTooLarge, UnsupportedMediaType) as error:
                form_failed(req, resp, error, self._render, form=values)
                return
            try:
                ticket = self.tickets.create(
                    new,
                    channel="WEB",
                    actor=req.context.user,
                    address=req.context.client_address,
                    uploads=form.uploads,
                )
            except RateLimited as error:
                form_failed(req, resp, error, self._render, form=values)
                return
            except KeptAway:  # a blocked address: thanked, without a number
                query = urlencode(
                    {"pid": RECEIVED, "sig": sign(self.secret_key, CONFIRMATION, RECEIVED)}
                )
                raise falcon.HTTPSeeOther(f"/submitted?{query}") from None
        query = urlencode(
            {"pid": ticket["pid"], "sig": sign(self.secret_key, CONFIRMATION, ticket["pid"])}
        )
        raise falcon.HTTPSeeOther(f"/submitted?{query}")

    def _render(self, req, resp, *, form, errors, status=200, message=None) -> None:
        self.pages.render(
            req,
            resp,
            "public_form.html",
            status=status,
            form=form,
            errors=errors,
            message=message,
            priorities=PRIORITY_LABELS,
            limits=self.limits,
        )


class SubmittedPage:
    """The confirmation after the form: the PID in large type and what happens next."""

    def __init__(self, pages: Pages, secret_key: str):
        self.pages = pages
        self.secret_key = secret_key

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        pid, sig = req.get_param("pid") or "", req.get_param("sig") or ""
        if not pid or not signature_valid(self.secret_key, CONFIRMATION, pid, sig):
            raise NotFound("This confirmation link is not valid.")
        self.pages.render(req, resp, "submitted.html", pid=pid)


class TicketsPage:
    """The staff list: filters as a GET form, a table, page links that keep the filters."""

    def __init__(self, tickets: TicketService, staff: StaffService, pages: Pages):
        self.tickets = tickets
        self.staff = staff
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raw = dict(req.params)
        try:
            filters = parse_filters(raw)
        except ValidationFailed as error:
            form_failed(
                req, resp, error, self._render, form=raw, page=None, filters=TicketFilters()
            )
            return
        self.render_list(req, resp, filters=filters, form=raw)

    def render_list(
        self, req, resp, *, filters, form=None, status=200, errors=None, message=None
    ) -> None:
        """The list under `filters` (also after a refused bulk form, with its errors)."""
        page = self.tickets.list(req.context.user, filters)
        form = form if form is not None else filters.as_query()
        self._render(
            req,
            resp,
            page=page,
            filters=filters,
            form=form,
            errors=errors or {},
            status=status,
            message=message,
        )

    def _render(self, req, resp, *, page, filters, form, errors, status=200, message=None) -> None:
        """The list; after refused filters, them as typed and the errors listed (which say
        all that `message` would)."""

        def link(number: int) -> str:
            return "/tickets?" + urlencode(
                filters.as_query() | {"page": number, "per_page": filters.per_page}
            )

        self.pages.render(
            req,
            resp,
            "tickets.html",
            status=status,
            page=page,
            filters=filters,
            raw=form,
            errors=errors,
            link=link,
            age=age,
            statuses=STATUS_LABELS,
            priorities=PRIORITY_LABELS,
            # The assignee filter lists colleagues for managers only: an AGENT sees only
            # its own tickets, and the staff directory is not its to read (GET /api/users
            # is 403 for it).
            staff=self.staff.assignable_users() if is_manager(req.context.user) else None,
            # After the bulk form (tickets/bulk.py): "12 changed, 1 not found."
            bulk_summary=summary_text(req.get_param("bulk")),
            bulk_back=urlencode(
                filters.as_query() | {"page": filters.page, "per_page": filters.per_page}
            ),
        )


# The reply box's checkboxes "Attach from the saved reply: ...", one per file (repeated).
SAVED_FILE_FIELD = "saved_reply_file"


def chosen_saved_files(fields: Mapping[str, Any]) -> list[int]:
    """The ids of the checked saved replies' files in a form read as a whole (a repeated
    field is a list there); what is not an id is left out (only offered again)."""
    raw = fields.get(SAVED_FILE_FIELD)
    values = raw if isinstance(raw, list) else [] if raw is None else [raw]
    return [int(v) for v in values if isinstance(v, str) and WHOLE_NUMBER.match(v.strip())]


class TicketPage:
    """One ticket: header, the thread, the timeline, status and priority, assignment."""

    def __init__(
        self,
        tickets: TicketService,
        messages: MessageService,
        staff: StaffService,
        pages: Pages,
        limits: UploadLimits,
        participants: ParticipantService,
        saved_replies: SavedReplies,
        following: FollowService,
        saved_files: SavedReplyFiles,
    ):
        self.saved_replies = saved_replies
        self.saved_files = saved_files
        self.tickets = tickets
        self.messages = messages
        self.participants = participants
        self.staff = staff
        self.pages = pages
        self.limits = limits
        self.following = following

    @classmethod
    def build(cls, services: Services) -> TicketPage:
        """The page, for the resources that render it again after a refused form."""
        return cls(
            services.tickets,
            services.messages,
            services.staff,
            services.pages,
            services.upload_limits,
            services.participants,
            services.saved_replies,
            services.following,
            services.saved_reply_files,
        )

    def on_get(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        self.show(req, resp, pid)

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        try:
            change = parse_ticket_change(ticket_change_from_form(form_data(req)))
            self.tickets.update(req.context.user, pid, change)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.show, pid=pid)
            return
        raise falcon.HTTPSeeOther(f"/tickets/{pid}?notice=updated")

    def show(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        pid: str,
        *,
        message: str | None = None,
        errors: dict[str, str] | None = None,
        reply: dict[str, object] | None = None,
        reply_errors: dict[str, str] | None = None,
        status: int = 200,
        form: dict[str, object] | None = None,
    ) -> None:
        """The ticket page; after a refused form, with its message and field errors (and
        the reply as it was typed)."""
        viewer = req.context.user
        thread = self.messages.thread(viewer, pid)
        can_assign = is_manager(viewer)
        reply = reply or {}
        # Files of saved replies offered in the reply box (checked): those inserted, and
        # those checked in a reply sent back refused; only those the viewer may use.
        offered = self.saved_files.usable(viewer, reply.get("saved_reply_files") or ())
        newer = req.get_param("newer") or ""
        self.pages.render(
            req,
            resp,
            "ticket.html",
            status=status,
            ticket=thread.ticket,
            thread=thread,
            participants=self.participants.of(viewer, pid),
            author_name=author_name,
            # The "Copy someone" form as typed, after it was refused.
            copy_form=form or {},
            events=[public_event(e) for e in self.tickets.timeline(viewer, pid)],
            statuses=STATUS_LABELS,
            priorities=PRIORITY_LABELS,
            message=message,
            errors=errors or {},
            notice=NOTICES.get(req.get_param("notice") or ""),
            newer=int(newer) if newer.isascii() and newer.isdigit() and len(newer) < 7 else 0,
            reply=reply,
            reply_errors=reply_errors or {},
            offered_files=offered,
            images=IMAGES,
            limits=self.limits,
            can_assign=can_assign,
            # Whoever sees an unassigned ticket may take it (an AGENT: with
            # AGENTS_SEE_UNASSIGNED); an AGENT's reply takes it as well.
            can_take=thread.ticket["assigned_to"] is None,
            replying_takes=thread.ticket["assigned_to"] is None and not can_assign,
            staff=self.staff.assignable_users() if can_assign else [],
            saved_replies=self.saved_replies.usable(viewer),
            others=self.tickets.requester_tickets(viewer, thread.ticket),
            following=self.following.is_following(viewer, thread.ticket),
        )

    def show_reply(self, req, resp, pid: str, *, form, errors, status: int, message=None) -> None:
        """The page after a refused reply: the reply as typed, the field messages by the
        reply box (not at the top, where the other forms' message goes)."""
        self.show(req, resp, pid, reply=form, reply_errors=errors, status=status)


class TicketTakePage:
    """The Take button's form (a plain POST; the button is shown on unassigned tickets):
    back to the ticket, now assigned to the taker. If someone else took it since the page
    was shown, the error page says so: who, to ADMIN and SUB_ADMIN (a 409); to an AGENT,
    for whom another's ticket is out of reach, a 404 that says the same of a ticket that
    does not exist."""

    def __init__(self, assignment: AssignmentService):
        self.assignment = assignment

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        try:
            self.assignment.take(req.context.user, pid, shown_unassigned=True)
        except NotFound:
            raise NotFound(
                "No such ticket, or someone else has taken it since you saw it."
            ) from None
        raise falcon.HTTPSeeOther(f"/tickets/{pid}?notice=taken")


class TicketAssignPage:
    """The assignment dialog's form (a plain POST that works without JavaScript)."""

    def __init__(self, assignment: AssignmentService, ticket_page: TicketPage):
        self.assignment = assignment
        self.ticket_page = ticket_page

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        try:
            assignment = parse_assignment(assignment_from_form(form_data(req)))
            self.assignment.assign(req.context.user, pid, assignment)
        except ValidationFailed as error:
            form_failed(req, resp, error, self.ticket_page.show, pid=pid)
            return
        raise falcon.HTTPSeeOther(f"/tickets/{pid}?notice=assigned")


def build(services: Services) -> dict[str, object]:
    tickets, pages, secret = services.tickets, services.pages, services.settings.secret_key
    ticket_page = TicketPage.build(services)
    return {
        "tickets": TicketsResource(tickets, services.outgoing, services.upload_limits),
        "ticket": TicketResource(tickets, services.participants),
        "ticket_assign": TicketAssignResource(services.assignment),
        "ticket_take": TicketTakeResource(services.assignment),
        "ticket_events": TicketEventsResource(tickets),
        "public_form": PublicFormPage(tickets, pages, secret, services.upload_limits),
        "submitted_page": SubmittedPage(pages, secret),
        "tickets_page": TicketsPage(tickets, services.staff, pages),
        "ticket_page": ticket_page,
        "ticket_assign_page": TicketAssignPage(services.assignment, ticket_page),
        "ticket_take_page": TicketTakePage(services.assignment),
    }
