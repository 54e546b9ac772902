"""How a send can fail, in the two kinds the worker acts on (DESIGN.md section 6).

`TransientFailure` (4xx replies, refused or dropped connections, timeouts, a file storage
that does not answer: retried) and `PermanentFailure` (5xx replies about the message, an
email that cannot be built: not retried). `sender` re-exports them.
"""

from __future__ import annotations


class DeliveryFailure(Exception):
    """A send that did not succeed; `str()` is what the row and the log keep."""


class TransientFailure(DeliveryFailure):
    """Worth retrying: the server or the network may accept it later."""


class SessionFailure(TransientFailure):
    """The mail server could not be reached, or would not take mail from us at all (the
    connection, EHLO, STARTTLS, login or our sender address refused): whatever the
    message. Not the message's fault, so it does not use up one of its attempts."""


class PermanentFailure(DeliveryFailure):
    """Retrying will not help: the server refused this message for good (a 5xx reply to
    its recipient or its content), or the email cannot be made (a file gone)."""
