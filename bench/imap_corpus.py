"""The mail `make bench-imap` puts into a Dovecot mailbox: varied like a support inbox, and the
same on every run (seeded).

Of every 20 messages: 8 plain text, 6 HTML with a text alternative, 3 with a file (a small
PDF or PNG), 3 replies from the sender of an earlier message, threaded to it by In-Reply-To
and quoting it, as a mail client writes them.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

WORDS = [
    "order",
    "invoice",
    "refund",
    "delivery",
    "password",
    "account",
    "login",
    "error",
    "payment",
    "card",
    "shipping",
    "label",
    "broken",
    "screen",
    "battery",
    "warranty",
    "return",
    "exchange",
    "subscription",
    "cancel",
    "upgrade",
    "café",
    "über",
    "straße",
    "naïve",
    "résumé",
    "東京",
    "déjà",
    "vu",
]

# A one-page PDF and a 1x1 PNG: real files the upload check accepts by their first bytes.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
    b"/Count 1>>endobj 3 0 obj<</Type/Page/MediaBox[0 0 10 10]/Parent 2 0 R>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _text(rng: random.Random, words: int) -> str:
    lines = []
    for _ in range(max(1, words // 12)):
        lines.append(" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + ".")
    return "\n".join(lines)


def corpus(count: int, domain: str = "customers.example", seed: int = 20) -> Iterator[bytes]:
    """`count` messages as bytes, oldest first, dated within the last few days."""
    rng = random.Random(seed)
    earlier: list[tuple[str, str, str, str]] = []  # (sender, name, subject, message-id)
    start = datetime.now(UTC) - timedelta(days=3)
    for n in range(count):
        kind = n % 20
        message = EmailMessage()
        if kind >= 17 and earlier:
            sender, name, subject, parent = earlier[rng.randrange(len(earlier))]
            message["Subject"] = "Re: " + subject
            message["In-Reply-To"] = parent
            message["References"] = parent
            body = (
                _text(rng, 30)
                + "\n\nOn Monday you wrote:\n> "
                + _text(rng, 24).replace("\n", "\n> ")
            )
        else:
            sender = f"customer{n}@{domain}"
            name = f"Customer {n}"
            subject = f"Question {n}: " + " ".join(rng.choice(WORDS) for _ in range(4))
            message["Subject"] = subject
            body = _text(rng, 60)
        message_id = make_msgid(domain=domain)
        message["From"] = f"{name} <{sender}>"
        message["To"] = "support@desk.example"
        message["Message-ID"] = message_id
        message["Date"] = format_datetime(start + timedelta(seconds=20 * n))
        message.set_content(body)
        if 8 <= kind < 14:
            paragraphs = "".join(f"<p>{line}</p>" for line in body.splitlines())
            message.add_alternative(
                f"<html><body>{paragraphs}<table><tr><td>Ref</td><td>{n}</td></tr></table>"
                "</body></html>",
                subtype="html",
            )
        elif 14 <= kind < 17:
            if n % 2:
                message.add_attachment(
                    PDF, maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf"
                )
            else:
                message.add_attachment(
                    PNG, maintype="image", subtype="png", filename=f"screen-{n}.png"
                )
        if kind < 17:
            earlier.append((sender, name, subject, message_id))
        yield bytes(message)
