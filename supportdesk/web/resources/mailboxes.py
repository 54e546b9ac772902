"""The company's mailboxes (DESIGN.md section 10; ADMIN only): the JSON API and the page.

Secrets go in and never come out: the API and the page show whether a password is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from supportdesk.core.errors import AppError
from supportdesk.core.text import WHOLE_NUMBER
from supportdesk.core.vocabulary import MAIL_SECURITIES, OAUTH_PROVIDERS
from supportdesk.mail.mailboxes.service import MailboxService, public_mailbox
from supportdesk.web.resources.common import (
    Pages,
    form_data,
    form_failed,
    json_object,
    origin_of,
)

if TYPE_CHECKING:
    from supportdesk.web.services import Services

FORM_FIELDS = (
    "address", "display_name", "imap_host", "imap_port", "imap_security", "imap_folder",
    "auth", "username", "password", "oauth_provider", "smtp_host", "smtp_port",
    "smtp_security", "smtp_username", "smtp_password", "processed", "backfill_days",
    "trusted_authserv_ids",
)  # fmt: skip
NUMBERS = ("imap_port", "smtp_port", "backfill_days")
# Blank means "none" (the optional SMTP server, the provider); for the others, blank means
# "the default" on a new mailbox and "unchanged" (a password) on an edit.
CLEARABLE = ("oauth_provider", "smtp_host", "smtp_port", "smtp_security", "smtp_username")


class MailboxesResource:
    def __init__(self, mailboxes: MailboxService):
        self.mailboxes = mailboxes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"items": [public_mailbox(m) for m in self.mailboxes.list()]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        mailbox = self.mailboxes.create(json_object(req), origin_of(req))
        resp.status = falcon.HTTP_201
        resp.location = f"/api/mailboxes/{mailbox['id']}"
        resp.media = {"mailbox": public_mailbox(mailbox)}


class MailboxResource:
    def __init__(self, mailboxes: MailboxService):
        self.mailboxes = mailboxes

    def on_get(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        resp.media = {"mailbox": public_mailbox(self.mailboxes.get(mailbox_id))}

    def on_patch(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        mailbox = self.mailboxes.update(mailbox_id, json_object(req), origin_of(req))
        resp.media = {"mailbox": public_mailbox(mailbox)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        self.mailboxes.delete(mailbox_id, origin_of(req))
        resp.status = falcon.HTTP_204


class MailboxTestResource:
    def __init__(self, mailboxes: MailboxService):
        self.mailboxes = mailboxes

    def on_post(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        resp.media = self.mailboxes.test(mailbox_id).public()


# --- the page ------------------------------------------------------------------------------


def _typed(form: dict[str, Any], *, editing: bool) -> dict[str, Any]:
    """A page form's strings in the API's shape: numbers as numbers, the checkbox as a
    flag, blanks as "default", "none" or "unchanged" (see CLEARABLE)."""
    data: dict[str, Any] = {}
    for name in FORM_FIELDS:
        value = form.get(name, "")
        value = value.strip() if isinstance(value, str) and "password" not in name else value
        if value in ("", None):
            if editing and name in CLEARABLE:
                data[name] = None
            continue
        if name in NUMBERS and isinstance(value, str) and WHOLE_NUMBER.match(value):
            value = int(value)
        data[name] = value
    data["is_active"] = form.get("is_active") == "on"
    return data


class MailboxesPage:
    """The list with each mailbox's status, and the form to add one."""

    def __init__(self, mailboxes: MailboxService, pages: Pages):
        self.mailboxes = mailboxes
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.show(req, resp, notice=req.get_param("notice"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        form = form_data(req)
        try:
            mailbox = self.mailboxes.create(
                _typed(form, editing=False), origin_of(req), strict=False
            )
        except AppError as error:
            form_failed(req, resp, error, self.show, form=form)
            return
        raise falcon.HTTPSeeOther(f"/mailboxes?notice=added-{mailbox['id']}")

    def show(self, req, resp, *, form=None, errors=None, message=None, notice=None,
             tested=None, status=200) -> None:  # fmt: skip
        self.pages.render(
            req,
            resp,
            "mailboxes.html",
            status=status,
            mailboxes=[public_mailbox(m) for m in self.mailboxes.list()],
            form=form or {"is_active": "on"},
            errors=errors or {},
            message=message,
            notice=notice,
            tested=tested,
            securities=MAIL_SECURITIES,
            providers=OAUTH_PROVIDERS,
        )


class MailboxPage:
    """Edit one mailbox; a blank password keeps the stored one."""

    def __init__(self, mailboxes: MailboxService, pages: Pages):
        self.mailboxes = mailboxes
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        mailbox = public_mailbox(self.mailboxes.get(mailbox_id))
        self.show(req, resp, mailbox, saved=bool(req.get_param("saved")))

    def on_post(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        mailbox = public_mailbox(self.mailboxes.get(mailbox_id))
        form = form_data(req)
        try:
            self.mailboxes.update(
                mailbox_id, _typed(form, editing=True), origin_of(req), strict=False
            )
        except AppError as error:
            form_failed(req, resp, error, self.show, form=form, mailbox=mailbox)
            return
        raise falcon.HTTPSeeOther(f"/mailboxes/{mailbox_id}?saved=1")

    def show(self, req, resp, mailbox, *, form=None, errors=None, message=None, saved=False,
             status=200) -> None:  # fmt: skip
        if form is None:
            form = {k: v for k, v in mailbox.items() if v is not None and k in FORM_FIELDS}
            form["trusted_authserv_ids"] = "\n".join(mailbox["trusted_authserv_ids"])
            form["is_active"] = "on" if mailbox["is_active"] else ""
        self.pages.render(
            req,
            resp,
            "mailbox_edit.html",
            status=status,
            mailbox=mailbox,
            form=form,
            errors=errors or {},
            message=message,
            saved=saved,
            securities=MAIL_SECURITIES,
            providers=OAUTH_PROVIDERS,
        )


class MailboxDeletePage:
    def __init__(self, mailboxes: MailboxService):
        self.mailboxes = mailboxes

    def on_post(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        self.mailboxes.delete(mailbox_id, origin_of(req))
        raise falcon.HTTPSeeOther("/mailboxes?notice=deleted")


class MailboxTestPage:
    """ "Test connection": the list again, with what the server showed or what failed."""

    def __init__(self, mailboxes: MailboxService, page: MailboxesPage):
        self.mailboxes = mailboxes
        self.page = page

    def on_post(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        mailbox = self.mailboxes.get(mailbox_id)
        try:
            folder = self.mailboxes.test(mailbox_id)
        except AppError as error:
            tested = {"id": mailbox_id, "address": mailbox["address"], "ok": False,
                      "message": error.message}  # fmt: skip
            self.page.show(req, resp, tested=tested, status=error.status)
            return
        tested = {"id": mailbox_id, "address": mailbox["address"], "ok": True} | folder.public()
        self.page.show(req, resp, tested=tested)


def build(services: Services) -> dict[str, object]:
    mailboxes = services.mailboxes
    page = MailboxesPage(mailboxes, services.pages)
    return {
        "mailboxes": MailboxesResource(mailboxes),
        "mailbox": MailboxResource(mailboxes),
        "mailbox_test": MailboxTestResource(mailboxes),
        "mailboxes_page": page,
        "mailbox_edit_page": MailboxPage(mailboxes, services.pages),
        "mailbox_delete_page": MailboxDeletePage(mailboxes),
        "mailbox_test_page": MailboxTestPage(mailboxes, page),
    }
