"""The worker's thread that answers password-reset requests (DESIGN.md section 13).

The web process queues every request alike (accounts/password_resets.py); this thread takes
them one by one and lets `ResetMailer` decide, with the account at hand, whether an email
goes out. A failure (the database down) is logged and the request dropped: its person asks
again, as after any lost email.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import redis

from supportdesk.accounts.password_resets import PasswordResets
from supportdesk.mail.outbound.password_reset import ResetMailer

log = logging.getLogger("supportdesk.worker.password_resets")

WAIT_SECONDS = 1.0  # how long one wait for a request lasts: how soon a stop is noticed
# A request is answered this long after it was made, not at once: the work done for a real
# account (its link, its email, a commit) then falls on whatever requests arrive a second
# later, not on the tail of the request's own answer, where its timing could show it (on a
# host that runs the web and the worker side by side; `make bench-login` measures it).
SETTLE_SECONDS = 1.0


class ResetRequestsLoop:
    def __init__(self, resets: PasswordResets, mailer: ResetMailer, settle: float = SETTLE_SECONDS):
        self.resets = resets
        self.mailer = mailer
        self.settle = settle
        self.stopping = threading.Event()

    def step(self, wait: float = WAIT_SECONDS) -> bool | None:
        """Answer one request, waiting up to `wait` seconds for it: whether an email was
        queued, or None when no request came."""
        request = self.resets.next_request(wait)
        if request is None:
            return None
        if self.settle > 0:
            # Never longer than `settle`: a web host's clock ahead of ours delays no one.
            due = request.at + timedelta(seconds=self.settle)
            left = (due - datetime.now(UTC)).total_seconds()
            self.stopping.wait(min(self.settle, max(0.0, left)))
        return self.mailer.fulfil(request)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except redis.RedisError as ex:
                log.warning("password-reset requests: Redis is unreachable (%r)", ex)
                self.stopping.wait(5)
            except Exception:
                log.exception("a password-reset request failed and was dropped")

    def stop(self) -> None:
        self.stopping.set()
