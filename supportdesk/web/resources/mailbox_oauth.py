"""Connecting a mailbox with OAuth 2.0 (ADMIN only): off to the provider, and back.

`GET /mailboxes/{id}/oauth/start` sends the browser to the provider's consent page;
`GET /oauth/callback` is where the provider sends it back (the redirect URL registered with
the provider: PUBLIC_BASE_URL + /oauth/callback). Success lands on the Mailboxes page with
`?notice=connected`; a refusal or an expired state is an error page that says what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon

from supportdesk.mail.mailboxes.oauth import OAuthFlow
from supportdesk.web.resources.common import origin_of

if TYPE_CHECKING:
    from supportdesk.web.services import Services

CONNECTED = "/mailboxes?notice=connected"


class OAuthStartPage:
    def __init__(self, flow: OAuthFlow):
        self.flow = flow

    def on_get(self, req: falcon.Request, resp: falcon.Response, mailbox_id: int) -> None:
        user, session = req.context.user, req.context.session
        raise falcon.HTTPFound(self.flow.start(mailbox_id, user["id"], session.jti))


class OAuthCallbackPage:
    def __init__(self, flow: OAuthFlow):
        self.flow = flow

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        user, session = req.context.user, req.context.session
        mailbox = self.flow.finish(req.params, user["id"], session.jti, origin_of(req))
        raise falcon.HTTPSeeOther(f"{CONNECTED}&mailbox={mailbox['id']}")


def build(services: Services) -> dict[str, object]:
    return {
        "mailbox_oauth_start": OAuthStartPage(services.oauth),
        "oauth_callback": OAuthCallbackPage(services.oauth),
    }
