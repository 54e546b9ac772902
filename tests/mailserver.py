"""A real SMTP server in the test process (aiosmtpd), whose answers a test can script.

By default it accepts every message. A test can queue what the next DATA commands get:
a reply code (`451 ...`, `550 ...`), a dropped connection after DATA and before the reply,
or a stall (a slow server). Everything the server was sent is kept in `received`, with
what it answered, so a test can count deliveries per Message-ID.
"""

from __future__ import annotations

import asyncio
import email
import threading
import time
from collections import deque
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from supportdesk.dev.embedded import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    answer: str  # what the server replied ("dropped" when it hung up instead)
    raw: bytes = b""  # the message as DATA carried it (a resend must be the same bytes)

    @property
    def accepted(self) -> bool:
        return self.answer.startswith("250")

    @property
    def message_id(self) -> str:
        return self.header("Message-ID")

    def header(self, name: str) -> str:
        """A header as a reader sees it: unfolded, without the folding's leading space."""
        value = self.message[name]
        return "" if value is None else " ".join(str(value).split())


class ScriptedHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._script: deque[tuple[str, object]] = deque()
        # Answers to the next MAIL FROM / RCPT TO commands ("530 ...", "550 ..."), if any.
        self.mail_replies: deque[str] = deque()
        self.rcpt_replies: deque[str] = deque()
        # Answers to RCPT TO for given addresses, every time ("550 ..."), before the above.
        self.rcpt_refusals: dict[str, str] = {}
        self._lock = threading.Lock()
        self.data_arrived = threading.Event()  # set at each DATA; a test may clear it

    def next(self, action: str, value: object = None, times: int = 1) -> None:
        """Script the next `times` DATA answers: ("reply", "451 ..."), ("drop", None),
        ("stall", seconds) then accept, ("hold", threading.Event) then accept."""
        with self._lock:
            self._script.extend([(action, value)] * times)

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.mail_replies:
            return self.mail_replies.popleft()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.rcpt_refusals:
            return self.rcpt_refusals[address]
        if self.rcpt_replies:
            return self.rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            action, value = self._script.popleft() if self._script else ("accept", None)
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        self.data_arrived.set()
        if action == "stall":
            await asyncio.sleep(float(value))  # type: ignore[arg-type]
        elif action == "hold":
            while not value.is_set():  # type: ignore[union-attr]
                await asyncio.sleep(0.02)
        answer = "250 2.0.0 Accepted"
        if action == "reply":
            answer = str(value)
        elif action == "drop":
            answer = "dropped"
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message,
                answer,
                envelope.original_content,
            )
        )
        if action == "drop":
            server.transport.abort()  # hang up after DATA, before any reply
            return "250 never seen"
        return answer


class SmtpTestServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.handler = ScriptedHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpTestServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def accepted(self) -> list[Received]:
        return [r for r in self.handler.received if r.accepted]

    def next(self, action: str, value: object = None, times: int = 1) -> None:
        self.handler.next(action, value, times)

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """The accepted messages once there are at least `count` (else AssertionError)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.accepted()) >= count:
                return self.accepted()
            time.sleep(0.02)
        raise AssertionError(f"{len(self.accepted())} of {count} emails arrived in {timeout}s")
