"""Downloading an attachment: for staff with access to its ticket, or by a signed link."""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.core.errors import NotFound
from supportdesk.files.storage import Storage
from supportdesk.tickets.attachments import AttachmentService, Download

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class AttachmentResource:
    def __init__(self, attachments: AttachmentService):
        self.attachments = attachments

    def on_get(self, req: falcon.Request, resp: falcon.Response, attachment_id: int) -> None:
        row = self.attachments.for_viewer(
            req.context.user,
            attachment_id,
            by_link=getattr(req.context, "signed_link", False),
        )
        download = self.attachments.download(
            row, inline=req.get_param("inline") in ("1", "true", "yes")
        )
        send_download(resp, self.attachments.storage, download)


def send_download(resp: falcon.Response, storage: Storage, download: Download) -> None:
    """A stored file as the answer: a redirect to the storage's short-lived URL (S3), or
    its bytes streamed, with the download's headers either way."""
    for name, value in download.headers.items():
        resp.set_header(name, value)
    if download.url is not None:  # S3: the storage serves it, for a few minutes
        resp.status = falcon.HTTP_302
        resp.location = download.url
        return
    try:
        resp.stream = storage.read(download.row["storage_key"])
    except FileNotFoundError:
        raise NotFound("This file is no longer available.") from None
    resp.content_type = download.content_type
    resp.content_length = download.row["size_bytes"]


def build(services: Services) -> dict[str, object]:
    return {"attachment": AttachmentResource(services.attachments)}
