"""Saved replies (DESIGN.md section 12): the JSON API, the management page, and the reply
box's Insert without JavaScript (with JavaScript, static/saved_replies.js calls the API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from supportdesk.core.errors import AppError, ValidationFailed
from supportdesk.core.text import WHOLE_NUMBER
from supportdesk.core.vocabulary import is_manager
from supportdesk.tickets.reply_templates import PLACEHOLDERS
from supportdesk.tickets.saved_replies import (
    RENDER_SAVED_REPLY,
    SavedReplies,
    public_saved_reply,
)
from supportdesk.web.resources.common import Pages, form_data, form_failed, json_object
from supportdesk.web.resources.tickets import TicketPage

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class SavedRepliesResource:
    def __init__(self, replies: SavedReplies):
        self.replies = replies

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        items = self.replies.usable(req.context.user)
        resp.media = {"items": [public_saved_reply(r) for r in items]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        reply = self.replies.create(req.context.user, json_object(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/saved-replies/{reply['id']}"
        resp.media = {"saved_reply": public_saved_reply(reply)}


class SavedReplyResource:
    def __init__(self, replies: SavedReplies):
        self.replies = replies

    def on_patch(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        reply = self.replies.update(req.context.user, reply_id, json_object(req))
        resp.media = {"saved_reply": public_saved_reply(reply)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        self.replies.delete(req.context.user, reply_id)
        resp.status = falcon.HTTP_204


class SavedReplyRenderResource:
    def __init__(self, replies: SavedReplies):
        self.replies = replies

    def on_post(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        pid = RENDER_SAVED_REPLY.parse(json_object(req))["pid"]
        resp.media = {"text": self.replies.render(req.context.user, reply_id, pid)}


# --- the pages -----------------------------------------------------------------------------


def _typed(form: dict[str, Any]) -> dict[str, Any]:
    """The page form in the API's shape: the checkbox as a flag."""
    return {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "shared": form.get("shared") == "on",
    }


class SavedRepliesPage:
    """The list (shared ones, then one's own) and the form to add one."""

    def __init__(self, replies: SavedReplies, pages: Pages):
        self.replies = replies
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.show(req, resp, notice=req.get_param("notice"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        try:
            self.replies.create(req.context.user, _typed(form), strict=False)
        except AppError as error:
            form_failed(req, resp, error, self.show, form=form)
            return
        raise falcon.HTTPSeeOther("/saved-replies?notice=added")

    def show(self, req, resp, *, form=None, errors=None, message=None, notice=None,
             status=200) -> None:  # fmt: skip
        items = [public_saved_reply(r) for r in self.replies.usable(req.context.user)]
        self.pages.render(
            req,
            resp,
            "saved_replies.html",
            status=status,
            shared=[r for r in items if r["shared"]],
            personal=[r for r in items if not r["shared"]],
            may_share=is_manager(req.context.user),
            form=form or {},
            errors=errors or {},
            message=message,
            notice=notice,
            placeholders=PLACEHOLDERS,
        )


class SavedReplyPage:
    """Edit one saved reply (a shared one: ADMIN and SUB_ADMIN)."""

    def __init__(self, replies: SavedReplies, pages: Pages):
        self.replies = replies
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        reply = self.replies.get(req.context.user, reply_id, to_change=True)
        self.show(req, resp, public_saved_reply(reply))

    def on_post(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        reply = public_saved_reply(self.replies.get(req.context.user, reply_id, to_change=True))
        form = form_data(req)
        try:
            self.replies.update(req.context.user, reply_id, _typed(form), strict=False)
        except AppError as error:
            form_failed(req, resp, error, self.show, form=form, reply=reply)
            return
        raise falcon.HTTPSeeOther("/saved-replies?notice=saved")

    def show(self, req, resp, reply, *, form=None, errors=None, message=None,
             status=200) -> None:  # fmt: skip
        if form is None:
            form = {"title": reply["title"], "body": reply["body"],
                    "shared": "on" if reply["shared"] else ""}  # fmt: skip
        self.pages.render(
            req,
            resp,
            "saved_reply_edit.html",
            status=status,
            reply=reply,
            may_share=is_manager(req.context.user),
            form=form,
            errors=errors or {},
            message=message,
            placeholders=PLACEHOLDERS,
        )


class SavedReplyDeletePage:
    def __init__(self, replies: SavedReplies):
        self.replies = replies

    def on_post(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        self.replies.delete(req.context.user, reply_id)
        raise falcon.HTTPSeeOther("/saved-replies?notice=deleted")


class InsertSavedReplyPage:
    """The reply box's Insert without JavaScript: the reply form is sent here (its Insert
    button's `formaction`), and the ticket page comes back with the chosen reply filled in
    after what was already typed, the other choices kept. Files chosen are not kept (a
    browser cannot be handed them back): the page says so."""

    def __init__(self, replies: SavedReplies, ticket_page: TicketPage):
        self.replies = replies
        self.ticket_page = ticket_page

    def on_post(self, req: falcon.Request, resp: falcon.Response, pid: str) -> None:
        form = form_data(req)
        chosen = str(form.get("saved_reply_id", "")).strip()
        typed = str(form.get("body", ""))
        try:
            if not WHOLE_NUMBER.match(chosen):
                raise ValidationFailed({"saved_reply_id": "Choose a saved reply to insert."})
            text = self.replies.render(req.context.user, int(chosen), pid)
        except ValidationFailed as error:  # a reply gone or a ticket out of reach: 404
            form_failed(req, resp, error, self.ticket_page.show_reply, form=form, pid=pid)
            return
        body = f"{typed.rstrip()}\n\n{text}" if typed.strip() else text
        self.ticket_page.show(req, resp, pid, reply=form | {"body": body, "saved_reply_id": chosen})


def build(services: Services) -> dict[str, object]:
    replies = services.saved_replies
    return {
        "saved_replies": SavedRepliesResource(replies),
        "saved_reply": SavedReplyResource(replies),
        "saved_reply_render": SavedReplyRenderResource(replies),
        "saved_replies_page": SavedRepliesPage(replies, services.pages),
        "saved_reply_edit_page": SavedReplyPage(replies, services.pages),
        "saved_reply_delete_page": SavedReplyDeletePage(replies),
        "ticket_saved_reply_page": InsertSavedReplyPage(replies, TicketPage.build(services)),
    }
