"""The development mailbox pages: what the local SMTP server received (development only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import falcon

from supportdesk.mail.eml_folder import list_mail, read_mail
from supportdesk.web.middleware import CONTENT_SECURITY_POLICY
from supportdesk.web.resources.common import Pages

if TYPE_CHECKING:
    from supportdesk.web.services import Services


MAIL_PAGE_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


class MailboxPage:
    def __init__(self, directory: Path, pages: Pages):
        self.directory = directory
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.pages.render(
            req, resp, "mailbox.html", mails=list_mail(self.directory), directory=self.directory
        )


class MailPage:
    def __init__(self, directory: Path, pages: Pages):
        self.directory = directory
        self.pages = pages

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self.pages.render(req, resp, "mail.html", mail=read_mail(self.directory, name))
        # The email's HTML is shown as it is, in a sandboxed frame (no script runs there):
        # its inline styles are what the recipient's mail client would apply.
        resp.set_header("Content-Security-Policy", MAIL_PAGE_POLICY)


def build(services: Services) -> dict[str, object]:
    directory, pages = services.settings.dev_mailbox_dir, services.pages
    return {"mailbox_page": MailboxPage(directory, pages), "mail_page": MailPage(directory, pages)}
