"""The six kinds of malformed sender of issue 20 (item 5), as the webhook, the SMTP listener
and the parser's tests send them. Real-world mail from other help desks' test corpora: each
was refused with a 422 before. `requester` is the address the ticket is opened for; None
means the email has no usable address and is kept in the quarantine."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sender:
    name: str
    headers: str  # the sender's header lines (CRLF-ended), as written in the email
    requester: str | None
    # The SMTP envelope sender, which the listener writes as Return-Path: empty (a bounce's)
    # unless the case is about Return-Path, so that only the headers decide.
    envelope: str = ""
    # The JSON payload's `from` and `headers` of the same email (the provider's form).
    json_from: str | None = None
    json_headers: dict[str, str] | None = None

    def raw(self, message_id: str, body: str = "Please call me back about my order.") -> bytes:
        return (
            f"{self.headers}To: support@example.com\r\nSubject: Where is my order?\r\n"
            f"Message-ID: {message_id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n"
        ).encode()

    def payload(self, message_id: str) -> dict[str, object]:
        payload: dict[str, object] = {
            "to": "support@example.com",
            "subject": "Where is my order?",
            "text": "Please call me back about my order.",
            "message_id": message_id,
        }
        if self.json_from is not None:
            payload["from"] = self.json_from
        if self.json_headers:
            payload["headers"] = self.json_headers
        return payload


SENDERS = (
    Sender(
        "no-from-but-a-good-reply-to",
        "Reply-To: Ann Example <ann@example.org>\r\n",
        "ann@example.org",
        json_headers={"Reply-To": "Ann Example <ann@example.org>"},
    ),
    Sender(
        "name-and-bare-address",
        "From: Test test@example.com\r\n",
        "test@example.com",
        json_from="Test test@example.com",
    ),
    Sender(
        "intranet-address-without-a-dot",
        "From: Martin <redacted@redacted>\r\n",
        "redacted@redacted",
        json_from="Martin <redacted@redacted>",
    ),
    Sender(
        "garbage-from-and-a-sender",
        "From: !!! ??? ###\r\nSender: Bob Relay <bob@example.org>\r\n",
        "bob@example.org",
        json_from="!!! ??? ###",
        json_headers={"Sender": "Bob Relay <bob@example.org>"},
    ),
    Sender(
        "garbage-from-and-a-return-path",
        "Return-Path: <rp@example.org>\r\nFrom: !!! ??? ###\r\n",
        "rp@example.org",
        envelope="rp@example.org",
        json_from="!!! ??? ###",
        json_headers={"Return-Path": "<rp@example.org>"},
    ),
    Sender("garbage-from-and-nothing-else", "From: !!! ??? ###\r\n", None, json_from="!!! ??? ###"),
    Sender("empty-from-and-nothing-else", "From: \r\n", None, json_from=""),
    Sender("no-from-at-all", "", None),
)
