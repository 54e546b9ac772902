"""The email to ADMINs when a mailbox must be connected again (DESIGN.md section 10).

`ReauthorizeAlerts` is the `on_reauthorize` of `mailboxes.tokens.AccessTokens`, which calls
it in the transaction that changes the mailbox to REAUTHORIZE, and only then: one email to
each active ADMIN per occurrence, through the outbox like every other email. It lives here,
above `mail.mailboxes`, which may not send mail itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis

from supportdesk.core.config import Settings
from supportdesk.core.db import Database, queries
from supportdesk.mail.outbound.compose import OutboundEmail
from supportdesk.mail.outbound.outbox import push_after_commit, queue_email

_active_admins = queries.active_admins

Row = Mapping[str, Any]
PROVIDER_NAMES = {"MICROSOFT": "Microsoft", "GOOGLE": "Google", "CUSTOM": "the provider"}


class ReauthorizeAlerts:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.redis = redis_client
        self.settings = settings
        self.clock = clock

    def __call__(self, conn: psycopg.Connection, mailbox: Row, reason: str) -> None:
        now = self.clock()
        ids = [
            queue_email(conn, self.compose(admin, mailbox, reason), ticket_id=None, now=now)
            for admin in _active_admins(conn)
        ]
        self.db.after_commit(push_after_commit, self.redis, ids)

    def compose(self, admin: Row, mailbox: Row, reason: str) -> OutboundEmail:
        settings = self.settings
        provider = PROVIDER_NAMES.get(mailbox["oauth_provider"] or "", "the provider")
        body = (
            f"Hello {admin['name']},\n\n"
            f"The mailbox {mailbox['address']} can no longer sign in to {provider}:\n"
            f"{reason}\n\n"
            "Until an administrator connects it again, no mail is fetched from it, and "
            "replies sent through it wait in the outbox. Nothing is lost: fetching resumes "
            "where it stopped.\n\n"
            f"Connect it again: {settings.public_base_url}/mailboxes, then "
            f'"Connect with {provider}".\n\n'
            f"-- \n{settings.company_name}\n"
        )
        return OutboundEmail(
            kind="NOTICE",
            to_address=admin["email"],
            subject=f"Mailbox {mailbox['address']} must be connected again",
            body_text=body,
            body_html="",
            message_id=(
                f"<sd.mailbox-{mailbox['id']}.notice.{uuid.uuid4().hex[:16]}"
                f"@{settings.mail_domain}>"
            ),
            from_address=settings.from_header,
            reply_to=settings.support_address,
            # RFC 3834: a notice, not a reply to anyone.
            headers={"Auto-Submitted": "auto-generated"},
        )
