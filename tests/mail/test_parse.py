"""The inbound parser's bounds, which the webhook tests cannot show without a clock."""

from __future__ import annotations

import email

import pytest

from supportdesk.inbound import parse
from supportdesk.inbound.parse import parse_mime

HOSTILE = '"a\\"' * 8000  # the email package's parser is quadratic on this


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("From", parse.MAX_ADDRESS_HEADER),
        ("Cc", parse.MAX_ADDRESS_HEADER),
        ("Content-Type", parse.MAX_CONTENT_HEADER),
        ("Content-Disposition", parse.MAX_CONTENT_HEADER),
    ],
)
def test_a_structured_header_is_cut_before_it_is_parsed(name, limit):
    raw = f"{name}: {HOSTILE}\r\nSubject: x\r\n\r\nbody\r\n".encode()
    message = email.message_from_bytes(raw, policy=parse._POLICY)
    assert len(str(message[name])) <= limit + 2  # the parser closes a quote it was cut in
    assert len(str(message["Subject"])) == 1  # others are read as they are


def test_a_long_address_list_is_cut_between_addresses():
    addresses = ", ".join(f"person{i}@example.org" for i in range(400))
    raw = f"From: a@example.org\r\nTo: {addresses}\r\n\r\nbody\r\n".encode()
    recipients = parse_mime(raw).recipients
    assert 100 < len(recipients) < 400
    assert all(r.startswith("person") and r.endswith("@example.org") for r in recipients)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        # Quoted without an "On ... wrote:" line: the reply parser alone kept the quote.
        ("Thank you, tomorrow is fine.\n\n> A technician comes tomorrow.\n", None),
        ("Fine.\n> line one\n>\n> line two\n\n", "Fine."),
        # A quote in the middle is the customer's own inline answer: kept.
        ("Hi\n> your question\nmy answer\n", "Hi\n> your question\nmy answer"),
        # Nothing but a quote: kept whole rather than shown empty.
        ("> only a quote\n", "> only a quote"),
    ],
)
def test_a_trailing_quote_is_trimmed_for_display(text, shown):
    from supportdesk.inbound.parse import trim_reply

    assert trim_reply(text) == (shown or "Thank you, tomorrow is fine.")
