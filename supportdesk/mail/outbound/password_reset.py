"""The password-reset email (DESIGN.md section 13), made by the worker from a queued request.

`accounts.password_resets` queues every request the same way, whatever address it names;
here, in the worker, the account is looked up at last. An active account gets a new link
through the outbox (in the transaction that makes the link and its audit row); an unknown
address is dropped without a trace, and a deactivated account gets no email (its audit row
says so). It lives here, above `accounts`, which may not send mail itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from supportdesk.accounts import audit
from supportdesk.accounts.password_resets import RESET_TTL, PasswordResets, ResetRequest
from supportdesk.core.config import Settings
from supportdesk.core.db import Database, queries
from supportdesk.mail.outbound.compose import OutboundEmail
from supportdesk.mail.outbound.outbox import push_after_commit, queue_email

log = logging.getLogger("supportdesk.mail.outbound.password_reset")

_user_by_email = queries.user_by_email

# Where the link opens: the page that sets the new password (web/resources/password_reset.py).
RESET_PAGE = "/password-reset/confirm"


class ResetMailer:
    def __init__(
        self,
        db: Database,
        redis_client: redis.Redis,
        resets: PasswordResets,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.db = db
        self.redis = redis_client
        self.resets = resets
        self.settings = settings
        self.clock = clock

    def fulfil(self, request: ResetRequest) -> bool:
        """Email a link for `request` if its address is an active account's; whether one
        was queued. A request older than a link's lifetime (the worker was down) is
        dropped: its person has asked again or given up."""
        now = self.clock()
        if now - request.at > RESET_TTL:
            log.info("a password-reset request from %s was too old to answer", request.at)
            return False
        with self.db.transaction() as conn:
            user = _user_by_email(conn, email=request.email)
            if user is None:
                return False
            target = ("user", user["id"])
            if not user["is_active"]:
                audit.record(
                    conn,
                    "PASSWORD_RESET_REQUESTED",
                    request.origin,
                    target=target,
                    data={"emailed": False, "reason": "deactivated"},
                    now=now,
                )
                return False
            token = self.resets.issue(conn, user, now)
            outbox_id = queue_email(conn, self.compose(user, token), ticket_id=None, now=now)
            audit.record(
                conn,
                "PASSWORD_RESET_REQUESTED",
                request.origin,
                target=target,
                data={"emailed": True},
                now=now,
            )
            self.db.after_commit(push_after_commit, self.redis, [outbox_id])
        return True

    def compose(self, user: Mapping[str, Any], token: str) -> OutboundEmail:
        """Plain text, composed here: the worker renders no templates."""
        settings = self.settings
        minutes = int(RESET_TTL.total_seconds() // 60)
        link = f"{settings.public_base_url}{RESET_PAGE}?token={token}"
        body = (
            f"Hello {user['name']},\n\n"
            f"Someone (we hope you) asked to set a new password for your {settings.company_name} "
            "support desk account.\n\n"
            f"Set a new password: {link}\n\n"
            f"The link works once, for {minutes} minutes; a newer link replaces it. Setting "
            "the password logs you out everywhere.\n\n"
            "If you did not ask for this, ignore this email: your password stays as it is.\n\n"
            f"-- \n{settings.company_name}\n"
        )
        return OutboundEmail(
            kind="PASSWORD_RESET",
            to_address=user["email"],
            subject=f"Set a new password for {settings.company_name}",
            body_text=body,
            body_html="",
            message_id=f"<sd.user-{user['id']}.reset.{uuid.uuid4().hex[:16]}@{settings.mail_domain}>",
            from_address=settings.from_header,
            reply_to=settings.support_address,
            # RFC 3834: automatic, nobody's reply; an autoresponder must not answer it.
            headers={"Auto-Submitted": "auto-generated"},
        )
