"""The inbound parser's bounds, which the webhook tests cannot show without a clock."""

from __future__ import annotations

import email

import pytest

from supportdesk.mail.inbound import parse
from supportdesk.mail.inbound.parse import parse_mime

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
    from supportdesk.mail.inbound.readable import trim_reply

    assert trim_reply(text) == (shown or "Thank you, tomorrow is fine.")


def test_message_ids_are_read_as_they_came_not_decoded():
    """RFC 2047 section 5 forbids encoded-words in a msg-id; decoding them was the way to
    put a hostile `<` and `@` run into the id search (issue 18)."""
    raw = (
        b"From: a@example.org\r\nMessage-ID: <own.1@example.org>\r\n"
        b"In-Reply-To: =?utf-8?q?=3Cours=2E1=40example=2Ecom=3E?=\r\n"
        b"References: <root.1@example.com>\r\n =?utf-8?q?=3Cours=2E2=40example=2Ecom=3E?=\r\n"
        b"\r\nbody\r\n"
    )
    email = parse_mime(raw)
    assert (email.in_reply_to, email.references) == ((), ("<root.1@example.com>",))


def test_a_message_read_unparsed_keeps_its_headers_and_the_whole_of_it():
    """What is stored when the parse runs out of time: read by hand, no parser involved."""
    from supportdesk.mail.inbound.parse import UNREAD_TEXT, parse_mime_unread

    raw = (
        b"From: (((((\r\nReply-To: Cleo <cleo@example.org>\r\nTo: support@example.com\r\n"
        b"Subject: =?utf-8?q?Caf=C3=A9?= order\r\nMessage-ID: <unread.1@example.org>\r\n"
        b"In-Reply-To: <sd.1@example.com>\r\nAuto-Submitted: auto-replied\r\n"
        b"Content-Type: text/html\r\n\r\n" + b"<ol><li>" * 1000
    )
    email = parse_mime_unread(raw)
    assert (email.sender, email.sender_name, email.subject) == (
        "cleo@example.org",
        "Cleo",
        "Café order",
    )
    assert (email.message_id, email.in_reply_to) == (
        "<unread.1@example.org>",
        ("<sd.1@example.com>",),
    )
    assert email.automatic == "Auto-Submitted: auto-replied"
    assert email.text == email.display_text == UNREAD_TEXT
    [original] = email.files
    assert (original.filename, original.content_type, original.data, original.original) == (
        "message.eml",
        "message/rfc822",
        raw,
        True,
    )


def test_an_empty_boundary_does_not_count_every_dash_line_as_a_part():
    """Text about MIME (`boundary=` with nothing after it) and many `--` lines (a pasted
    log of 150 entries, each closed by one) is an ordinary email, not 150 parts."""
    entries = ["Ann, Accounts: job 7 failed", "--"] * 150
    lines = "\r\n".join(["Content-Type: multipart/mixed; boundary=", *entries])
    raw = (
        b"From: dev@example.org\r\nTo: support@example.com\r\nSubject: MIME question\r\n"
        b"Message-ID: <mime.q@example.org>\r\n\r\n" + lines.encode() + b"\r\n"
    )
    email = parse_mime(raw)
    assert email.text.count("Ann, Accounts") == 150


# --- who sent it (issue 20: no mail refused for its content) -------------------------------


JORG = "jorg@example.de"
P = "p@example.org"
S = "s@example.org"
T = "test@example.com"


@pytest.mark.parametrize(
    ("headers", "sender"),
    [
        ("From: Ann <ann@example.org>\r\nReply-To: o@example.org\r\n", ("Ann", "ann@example.org")),
        ("Reply-To: r@example.org\r\nSender: s@example.org\r\n", ("r", "r@example.org")),
        ("From: ?\r\nSender: s@example.org\r\nReturn-Path: <p@example.org>\r\n", ("s", S)),
        # The From line's words name the writer before Sender and Return-Path (the
        # envelope's sender) do, but after a whole Reply-To.
        ("From: Test test@example.com\r\nReturn-Path: <p@example.org>\r\n", ("Test", T)),
        ("From: Test test@example.com\r\nReply-To: r@example.org\r\n", ("r", "r@example.org")),
        ("From: Test test@example.com\r\nReturn-Path: <>\r\n", ("Test", "test@example.com")),
        ("From: root@intranet\r\n", ("root", "root@intranet")),
        ("From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <JORG@Example.DE>\r\n", ("Jörg Müller", JORG)),
        ("From: =?utf-8?q?J=C3=B6rg?= jorg@example.de\r\n", ("Jörg", JORG)),
        ("From: " + "x" * 240 + "@example.org\r\n", ("x" * 200, "x" * 240 + "@example.org")),
        ("From: a@b@c\r\n", ("", "")),
        ("From: two words@example.com\r\n", ("two", "words@example.com")),
        ("Return-Path: <>\r\n", ("", "")),
    ],
)
def test_the_sender_falls_back_header_by_header_then_leniently(headers, sender):
    raw = f"{headers}Subject: s\r\n\r\nbody\r\n".encode()
    for email_ in (parse_mime(raw), parse.parse_mime_unread(raw)):  # read, and out of time
        assert (email_.sender_name, email_.sender) == sender
        assert (email_.original is None) == bool(sender[1])


def test_an_email_without_a_sender_keeps_itself_whole_for_the_quarantine():
    raw = b"From: <>\r\nSubject: s\r\n\r\nbody\r\n"
    found = parse_mime(raw)
    assert (found.sender, found.from_header) == ("", "<>")
    assert found.original == parse.Original(raw, "message/rfc822")
