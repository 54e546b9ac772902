"""Which SMTP server an outbox row goes through, decided when it is sent (DESIGN.md section
10): a row written From a company mailbox (`mailbox_id`) goes through that mailbox's own
server when its `smtp_*` columns are set, logged in as the mailbox (its password, or SASL
XOAUTH2 with its access token, through `mailboxes.connect.MailboxLogin`); every other row,
and a mailbox without a server of its own, goes through the global server (SMTP_*), whose
one connection is kept and reused as before.

A mailbox server that cannot be reached or refuses the login, and a mailbox that must be
connected again (REAUTHORIZE), are a `SessionFailure` of that route only: the email waits
without using up an attempt, for `hold` seconds the route fails its other emails at once
instead of logging in again for each, and the global route goes on.
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Mapping
from typing import Any

from supportdesk.core.db import Database, queries
from supportdesk.mail.mailboxes.connect import MailboxLogin, PlainTextRefused, Reauthorize
from supportdesk.mail.mailboxes.secrets import SecretUnreadable
from supportdesk.mail.mailboxes.tokens import TokenUnavailable
from supportdesk.mail.outbound.sender import SessionFailure, SmtpSender

log = logging.getLogger("supportdesk.mail.outbound.smtp_routes")

_sending_mailbox = queries.sending_mailbox

Row = Mapping[str, Any]
# Why a mailbox's session could not be had, besides what SMTP itself raises.
MAILBOX_TROUBLE = (Reauthorize, TokenUnavailable, PlainTextRefused, SecretUnreadable)
# The columns that make a mailbox's SMTP session what it is: a change opens a new one.
_SESSION_COLUMNS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "username", "auth")


def _session_key(mailbox: Row) -> tuple[Any, ...]:
    secrets = (
        (mailbox["smtp_secret_encrypted"], mailbox["secret_encrypted"])
        if mailbox["auth"] == "PASSWORD"
        else ()  # OAuth: a refreshed token does not end a session that is logged in
    )
    return tuple(mailbox[c] for c in _SESSION_COLUMNS) + secrets


class MailboxSender(SmtpSender):
    """An SmtpSender whose session is a company mailbox's own, logged in as the mailbox."""

    def __init__(self, login: MailboxLogin, mailbox: Row, *, timeout: float, hold: float):
        super().__init__(mailbox["smtp_host"], mailbox["smtp_port"], timeout=timeout)
        self.login = login
        self.mailbox = mailbox
        self.key = _session_key(mailbox)
        self.hold = hold
        self._held_until = 0.0
        self._held_for = ""

    def _open(self) -> smtplib.SMTP:
        return self.login.smtp(self.mailbox, timeout=self.timeout)

    def _session(self) -> smtplib.SMTP:
        if time.monotonic() < self._held_until:
            raise SessionFailure(self._held_for)
        try:
            return super()._session()
        except SessionFailure as failure:
            self._held(f"mailbox {self.mailbox['address']}: {failure}")
            raise SessionFailure(self._held_for) from failure
        except MAILBOX_TROUBLE as trouble:
            self._held(f"mailbox {self.mailbox['address']}: {trouble}")
            raise SessionFailure(self._held_for) from trouble

    def _held(self, reason: str) -> None:
        log.warning("%s (its emails wait; tried again in %.0fs)", reason, self.hold)
        self._held_until, self._held_for = time.monotonic() + self.hold, reason


class SmtpRoutes:
    def __init__(
        self,
        db: Database,
        global_sender: SmtpSender,
        login: MailboxLogin | None = None,
        *,
        timeout: float = 30.0,
        hold: float = 30.0,
    ):
        """Without a `login`, every row goes through the global sender."""
        self.db = db
        self.global_sender = global_sender
        self.login = login
        self.timeout = timeout
        self.hold = hold
        self._mailbox_senders: dict[int, MailboxSender] = {}

    def sender_for(self, row: Row) -> SmtpSender:
        """The sender of an outbox row, by its mailbox as it is now."""
        if self.login is None or row.get("mailbox_id") is None:
            return self.global_sender
        with self.db.transaction() as conn:
            mailbox = _sending_mailbox(conn, id=row["mailbox_id"])
        if mailbox is None or not mailbox["is_active"] or mailbox["smtp_host"] is None:
            return self.global_sender
        sender = self._mailbox_senders.get(mailbox["id"])
        if sender is not None and sender.key != _session_key(mailbox):
            sender.close()  # its server or login changed
            sender = None
        if sender is None:
            sender = MailboxSender(self.login, mailbox, timeout=self.timeout, hold=self.hold)
            self._mailbox_senders[mailbox["id"]] = sender
        sender.mailbox = mailbox  # the token and status as they are now
        return sender

    def close(self) -> None:
        self.global_sender.close()
        for sender in self._mailbox_senders.values():
            sender.close()
        self._mailbox_senders.clear()
