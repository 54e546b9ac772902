"""`supportdesk smtp-inbound`: an SMTP listener (aiosmtpd) for local use and small
deployments, feeding every accepted message to the same service as the webhook.

It accepts mail for the support address's domain only (anything else is refused at RCPT,
so it is never an open relay), and answers after the message is stored: a bare
`250 2.0.0 Ok` once it is committed (naming the ticket or what became of the message told
anyone who is staff and which Message-ID is which ticket), 451 (try again later) when the
database or Redis is away, the listener is stopping, or something unexpected failed, or
the client sent more than its share of messages this hour (ratelimit.SmtpClientThrottle),
550 for a message that can never be stored (too many parts). A message with no usable
sender is kept in the quarantine and answered 250 like any other (DESIGN.md section 6).
The parse runs in a child process with a deadline (sandbox.py), so a hostile message
never holds the event loop: other sessions are answered meanwhile, and SIGTERM stops it.
The envelope sender is added as Return-Path, as a delivering server does: a bounce comes
with an empty one (`MAIL FROM:<>`), and that is how it is known as a bounce. Run it
behind the real MX, or point a local mail client at it: `make dev` does, on port 2525.
Each message's sender is checked here (DKIM, SPF for the connecting address, DMARC:
sender_auth/check.py) on the message as it arrived, and the verdict stored with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any, NamedTuple

import psycopg
import redis

from supportdesk.core.errors import AppError, RateLimited
from supportdesk.core.ratelimit import SmtpClientThrottle
from supportdesk.files.storage import StorageUnavailable
from supportdesk.mail.inbound.sandbox import ParseSandbox, ParseUnavailable
from supportdesk.mail.inbound.sender_auth.check import SenderCheck
from supportdesk.mail.inbound.service import InboundService

log = logging.getLogger("supportdesk.mail.inbound.smtp")


class InboundHandler:
    def __init__(
        self,
        inbound: InboundService,
        parser: ParseSandbox,
        domain: str,
        clients: SmtpClientThrottle,
        sender_check: SenderCheck,
    ):
        self.inbound = inbound
        self.parser = parser
        self.domain = domain.lower()
        self.clients = clients
        self.sender_check = sender_check
        self.in_flight = 0  # messages between the end of DATA and their answer

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.rpartition("@")[2].lower() != self.domain:
            return f"550 5.7.1 We accept mail for {self.domain} only"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_flight += 1
        try:
            return await self._answer(session, envelope)
        finally:
            self.in_flight -= 1

    def drain(self, seconds: float) -> None:
        """Wait, at most `seconds`, for the messages being handled to be answered (from
        another thread than the listener's, at shutdown)."""
        deadline = time.monotonic() + seconds
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)

    async def _answer(self, session: Any, envelope: Any) -> str:
        loop = asyncio.get_running_loop()
        try:
            raw = _with_return_path(envelope.mail_from, envelope.original_content)
            peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
            arrived = _Arrival(
                envelope.original_content, peer, envelope.mail_from or "", session.host_name or ""
            )
            received = await loop.run_in_executor(None, self._store, raw, arrived)
        except RateLimited as limited:
            log.warning("inbound SMTP message deferred: %s sent too many", session.peer)
            return f"451 4.7.1 {limited.message}"
        except ParseUnavailable:
            log.warning("inbound SMTP message not stored: stopping; asked to retry")
            return "451 4.3.2 Shutting down; try again later"
        except AppError as error:
            log.warning("inbound SMTP message refused: %s", error.message)
            return f"550 5.6.0 {error.message}"
        except (psycopg.Error, redis.RedisError, StorageUnavailable) as ex:
            log.error("inbound SMTP message not stored yet (%r): asked to retry", ex)
            return "451 4.3.0 Temporarily unable to store the message; try again later"
        except Exception:  # our bug, not the sender's: keep the message queued there
            log.exception("inbound SMTP message not stored: asked to retry")
            return "451 4.3.0 Temporarily unable to store the message; try again later"
        log.info("inbound SMTP message stored: %s %s", received.outcome, received.ticket_pid)
        return "250 2.0.0 Ok"

    def _store(self, raw: bytes, arrived: _Arrival):
        try:
            self.clients.attempt(arrived.peer)
        except redis.RedisError as ex:  # unchecked: the message is worth more than the limit
            log.warning("inbound SMTP client limit not checked, Redis unavailable: %r", ex)
        email = self.parser.parse_mime(raw)
        verdict = self.sender_check.verdict(
            arrived.content, arrived.peer, arrived.mail_from, arrived.helo
        )
        return self.inbound.receive(replace(email, sender_auth=verdict))


class _Arrival(NamedTuple):
    """How a message came: its bytes as sent (what a DKIM signature covers), the client's
    address, and what it said in MAIL FROM and HELO (what SPF checks)."""

    content: bytes
    peer: str
    mail_from: str
    helo: str


def _with_return_path(mail_from: str | None, raw: bytes) -> bytes:
    """The message as a final delivery leaves it: Return-Path first, any other removed."""
    sender = (mail_from or "").strip("<>").encode("ascii", "replace")
    lines = raw.split(b"\n")
    end = next((i for i, line in enumerate(lines) if not line.strip(b"\r")), len(lines))
    kept = [
        line
        for i, line in enumerate(lines)
        if i >= end or not line.lower().startswith(b"return-path:")
    ]
    return b"Return-Path: <" + sender + b">\r\n" + b"\n".join(kept)


def serve(
    inbound: InboundService,
    parser: ParseSandbox,
    clients: SmtpClientThrottle,
    domain: str,
    host: str,
    port: int,
    *,
    sender_check: SenderCheck,
) -> Any:
    from aiosmtpd.controller import Controller

    handler = InboundHandler(inbound, parser, domain, clients, sender_check)
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    return controller
