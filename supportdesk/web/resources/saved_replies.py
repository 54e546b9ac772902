"""Saved replies (DESIGN.md section 12): the JSON API (with their files), the management
page, and the reply box's Insert without JavaScript (with JavaScript,
static/saved_replies.js calls the API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from supportdesk.core.errors import AppError, UnsupportedMediaType, ValidationFailed
from supportdesk.core.text import WHOLE_NUMBER
from supportdesk.core.vocabulary import is_manager
from supportdesk.files.uploads import FIELD, UploadLimits
from supportdesk.tickets.attachments import AttachmentService
from supportdesk.tickets.reply_templates import PLACEHOLDERS
from supportdesk.tickets.saved_replies import (
    RENDER_SAVED_REPLY,
    SavedReplies,
    public_saved_reply,
    public_saved_reply_file,
)
from supportdesk.tickets.saved_reply_files import SavedReplyFiles
from supportdesk.web.guards import CSRF_FIELD
from supportdesk.web.resources.attachments import send_download
from supportdesk.web.resources.common import (
    FormInput,
    Pages,
    form_data,
    form_failed,
    is_multipart,
    json_object,
    read_form,
)
from supportdesk.web.resources.tickets import TicketPage, chosen_saved_files

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
        rendered = self.replies.render(req.context.user, reply_id, pid)
        resp.media = {
            "text": rendered.text,
            "files": [public_saved_reply_file(f) for f in rendered.files],
        }


class SavedReplyFilesResource:
    """Add files to a saved reply: multipart/form-data, the files under `attachments`."""

    def __init__(self, replies: SavedReplies, files: SavedReplyFiles, limits: UploadLimits):
        self.replies = replies
        self.files = files
        self.limits = limits

    def on_post(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        user = req.context.user
        self.replies.get(user, reply_id, to_change=True)  # 404 and 403 before the body
        if not is_multipart(req):
            raise UnsupportedMediaType(
                f"Send the files as multipart/form-data, under `{FIELD}`.",
                details={FIELD: "Send the files as multipart/form-data."},
            )
        with read_form(req, self.limits) as form:
            form.raise_error()
            _no_other_fields(form)
            self.files.add(user, reply_id, form.uploads)
        resp.status = falcon.HTTP_201
        resp.location = f"/api/saved-replies/{reply_id}"
        resp.media = {"saved_reply": public_saved_reply(self.replies.get(user, reply_id))}


def _no_other_fields(form: FormInput) -> None:
    if unknown := sorted(set(form.fields) - {CSRF_FIELD}):
        raise ValidationFailed(dict.fromkeys(unknown, "Unknown field."))


class SavedReplyFileResource:
    """One file of a saved reply: downloaded by whoever may use the reply, removed by
    whoever may change it."""

    def __init__(self, files: SavedReplyFiles, attachments: AttachmentService):
        self.files = files
        self.attachments = attachments

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, reply_id: int, file_id: int
    ) -> None:
        row = self.files.for_download(req.context.user, reply_id, file_id)
        send_download(resp, self.attachments.storage, self.attachments.download(row))

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, reply_id: int, file_id: int
    ) -> None:
        self.files.delete(req.context.user, reply_id, file_id)
        resp.status = falcon.HTTP_204


# --- the pages -----------------------------------------------------------------------------


def _typed(form: dict[str, Any]) -> dict[str, Any]:
    """The page form in the API's shape: the checkbox as a flag."""
    return {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "shared": form.get("shared") == "on",
    }


class SavedRepliesPage:
    """The list (shared ones, then one's own) and the form to add one, with its files."""

    def __init__(
        self, replies: SavedReplies, files: SavedReplyFiles, pages: Pages, limits: UploadLimits
    ):
        self.replies = replies
        self.files = files
        self.pages = pages
        self.limits = limits

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.show(req, resp, notice=req.get_param("notice"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        with read_form(req, self.limits) as form:
            try:
                form.raise_error()  # a refused file: nothing is saved, the text comes back
                reply = self.replies.create(req.context.user, _typed(form.fields), strict=False)
            except AppError as error:
                form_failed(req, resp, error, self.show, form=form.fields)
                return
            if form.uploads:  # checked already as the form was read: stored now
                self.files.add(req.context.user, reply["id"], form.uploads)
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
            limits=self.limits,
        )


class SavedReplyPage:
    """Edit one saved reply (a shared one: ADMIN and SUB_ADMIN): its text, and files to add
    to those it holds (each listed with its Remove button)."""

    def __init__(
        self, replies: SavedReplies, files: SavedReplyFiles, pages: Pages, limits: UploadLimits
    ):
        self.replies = replies
        self.files = files
        self.pages = pages
        self.limits = limits

    def on_get(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        reply = self.replies.get(req.context.user, reply_id, to_change=True)
        self.show(req, resp, public_saved_reply(reply), notice=req.get_param("notice"))

    def on_post(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        user = req.context.user
        reply = public_saved_reply(self.replies.get(user, reply_id, to_change=True))
        with read_form(req, self.limits) as form:
            try:
                form.raise_error()
                self.replies.update(user, reply_id, _typed(form.fields), strict=False)
                if form.uploads:
                    self.files.add(user, reply_id, form.uploads)
            except AppError as error:
                form_failed(req, resp, error, self.show, form=form.fields, reply=reply)
                return
        raise falcon.HTTPSeeOther("/saved-replies?notice=saved")

    def show(self, req, resp, reply, *, form=None, errors=None, message=None, notice=None,
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
            notice=notice,
            placeholders=PLACEHOLDERS,
            limits=self.limits,
        )


class SavedReplyFileDeletePage:
    """A file's Remove button on the saved reply's page."""

    def __init__(self, files: SavedReplyFiles):
        self.files = files

    def on_post(
        self, req: falcon.Request, resp: falcon.Response, reply_id: int, file_id: int
    ) -> None:
        self.files.delete(req.context.user, reply_id, file_id)
        raise falcon.HTTPSeeOther(f"/saved-replies/{reply_id}?notice=file-removed")


class SavedReplyDeletePage:
    def __init__(self, replies: SavedReplies):
        self.replies = replies

    def on_post(self, req: falcon.Request, resp: falcon.Response, reply_id: int) -> None:
        self.replies.delete(req.context.user, reply_id)
        raise falcon.HTTPSeeOther("/saved-replies?notice=deleted")


class InsertSavedReplyPage:
    """The reply box's Insert without JavaScript: the reply form is sent here (its Insert
    button's `formaction`), and the ticket page comes back with the chosen reply filled in
    after what was already typed, its files offered (checked) beside those offered before,
    the other choices kept. Files chosen for upload are not kept (a browser cannot be
    handed them back): the page says so."""

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
            rendered = self.replies.render(req.context.user, int(chosen), pid)
        except ValidationFailed as error:  # a reply gone or a ticket out of reach: 404
            form_failed(req, resp, error, self.ticket_page.show_reply, form=form, pid=pid)
            return
        body = f"{typed.rstrip()}\n\n{rendered.text}" if typed.strip() else rendered.text
        files = [*chosen_saved_files(req.get_media()), *(f["id"] for f in rendered.files)]
        reply = form | {"body": body, "saved_reply_id": chosen, "saved_reply_files": files}
        self.ticket_page.show(req, resp, pid, reply=reply)


def build(services: Services) -> dict[str, object]:
    replies, files, limits = (
        services.saved_replies,
        services.saved_reply_files,
        services.upload_limits,
    )
    return {
        "saved_replies": SavedRepliesResource(replies),
        "saved_reply": SavedReplyResource(replies),
        "saved_reply_render": SavedReplyRenderResource(replies),
        "saved_reply_files": SavedReplyFilesResource(replies, files, limits),
        "saved_reply_file": SavedReplyFileResource(files, services.attachments),
        "saved_replies_page": SavedRepliesPage(replies, files, services.pages, limits),
        "saved_reply_edit_page": SavedReplyPage(replies, files, services.pages, limits),
        "saved_reply_delete_page": SavedReplyDeletePage(replies),
        "saved_reply_file_delete_page": SavedReplyFileDeletePage(files),
        "ticket_saved_reply_page": InsertSavedReplyPage(replies, TicketPage.build(services)),
    }
