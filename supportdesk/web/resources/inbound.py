"""The inbound email webhook: what the mail provider (or the SMTP listener) delivers."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import falcon

from supportdesk.core.errors import UnsupportedMediaType
from supportdesk.mail.inbound.sandbox import ParseSandbox
from supportdesk.mail.inbound.sender_auth import verdict_from_headers
from supportdesk.mail.inbound.service import InboundService, Received
from supportdesk.web.resources.common import json_from_bytes

if TYPE_CHECKING:
    from supportdesk.web.services import Services


def public_received(received: Received) -> dict[str, object]:
    quarantined = received.quarantine_id is not None
    return {
        "outcome": received.outcome,
        "ticket": received.ticket_pid,
        "message_id": received.message_id,
        "acknowledged": received.acknowledged,
        "automatic": received.automatic,
        "quarantine": {"id": received.quarantine_id, "reason": received.reason}
        if quarantined
        else None,
    }


# Kept in the quarantine is 202 Accepted: stored, so the provider must not retry or bounce
# it (DESIGN.md section 6), but no ticket yet.
_STATUS = {"duplicate": falcon.HTTP_200, "quarantined": falcon.HTTP_202}


class InboundEmailResource:
    """JSON (`{from, to, subject, text, ...}`) or a raw `message/rfc822`; the middleware
    has checked the provider's signature over the body. Parsed in a child process with a
    deadline (sandbox.py): a hostile message cannot hold the worker. The sender's verdict
    is the JSON's `dmarc` field (read by the parse), or the raw message's
    Authentication-Results by one of `trusted_ids` (INBOUND_TRUSTED_AUTHSERV_IDS)."""

    def __init__(
        self, inbound: InboundService, parser: ParseSandbox, trusted_ids: tuple[str, ...] = ()
    ):
        self.inbound = inbound
        self.parser = parser
        self.trusted_ids = trusted_ids

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raw: bytes = req.context.signed_body.read()  # verified by the middleware
        media_type = (req.content_type or "").split(";")[0].strip().lower()
        if media_type == "message/rfc822":
            email = self.parser.parse_mime(raw)
            email = replace(email, sender_auth=verdict_from_headers(raw, self.trusted_ids))
        elif media_type == "application/json":
            email = self.parser.parse_json(json_from_bytes(raw), raw)
        else:
            raise UnsupportedMediaType("Send application/json or message/rfc822.")
        received = self.inbound.receive(email)
        resp.status = _STATUS.get(received.outcome, falcon.HTTP_201)
        resp.media = public_received(received)


def build(services: Services) -> dict[str, object]:
    return {
        "inbound_email": InboundEmailResource(
            services.inbound,
            services.inbound_parser,
            services.settings.inbound_trusted_authserv_ids,
        )
    }
