"""The reader of the forwarded block (forwarded.py) and of an attached original (parse.py):
each client's block, in plain text and as the text of its HTML; odd and hostile text read
in bounded time, never raising."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supportdesk.mail.inbound.forwarded import (
    APPLE,
    ATTACHED,
    GMAIL,
    OUTLOOK,
    is_forward_subject,
    read_forwarded,
    without_forward_prefix,
)
from supportdesk.mail.inbound.parse import parse_json, parse_mime
from supportdesk.mail.inbound.readable import html_to_text
from tests.mail import forwards
from tests.mail.forwards import FIXTURES, NOTE, ORIGINAL, forward

CLEO = ("Cleo Customer", "cleo@example.org")
DAN = ("Dan Colleague", "dan@example.org")

BLOCKS = [
    ("gmail", forwards.GMAIL_PLAIN, "Fwd: The printer jams", GMAIL, "Mon, Dec 7, 2026 at 9:12 AM"),
    ("gmail-german", forwards.GMAIL_GERMAN, "Fwd: x", GMAIL, "Mo., 7. Dez. 2026 um 09:12 Uhr"),
    (
        "outlook-classic",
        forwards.OUTLOOK_CLASSIC,
        "FW: x",
        OUTLOOK,
        "Monday, December 7, 2026 9:12 AM",
    ),
    ("outlook-new", forwards.OUTLOOK_NEW, "FW: x", OUTLOOK, "Monday, December 7, 2026 09:12"),
    ("outlook-german", forwards.OUTLOOK_GERMAN, "WG: x", OUTLOOK, "Montag, 7. Dezember 2026 09:12"),
    ("apple", forwards.APPLE_PLAIN, "Fwd: x", APPLE, "7 December 2026 at 09:12:00 GMT"),
    (
        "apple-quoted-german",
        forwards.APPLE_QUOTED_GERMAN,
        "WG: x",
        APPLE,
        "7. Dezember 2026 um 09:12:00 MEZ",
    ),
]


@pytest.mark.parametrize(
    ("text", "subject", "how", "date"), [b[1:] for b in BLOCKS], ids=[b[0] for b in BLOCKS]
)
def test_each_clients_block_gives_the_original(text, subject, how, date):
    found = read_forwarded(text, subject)
    assert found is not None
    assert (found.how, found.sender_name, found.sender) == (how, *CLEO)
    assert found.subject == "The printer jams"
    assert found.text.startswith(ORIGINAL)
    assert found.note == NOTE
    assert found.date == date


@pytest.mark.parametrize(
    ("html", "subject", "how", "cc"),
    [
        (forwards.GMAIL_HTML, "Fwd: x", GMAIL, (DAN,)),
        (forwards.OUTLOOK_HTML, "FW: x", OUTLOOK, (DAN,)),
        (forwards.OUTLOOK_WEB_HTML, "FW: x", OUTLOOK, ()),
    ],
    ids=["gmail", "outlook", "outlook-web"],
)
def test_the_text_of_an_html_forward_gives_the_original(html, subject, how, cc):
    found = read_forwarded(html_to_text(html).text, subject)
    assert found is not None
    assert (found.how, found.sender_name, found.sender, found.cc) == (how, *CLEO, cc)
    assert found.text.startswith(ORIGINAL)
    assert found.note == NOTE


def test_to_and_cc_are_read_in_each_way_clients_write_them():
    found = read_forwarded(forwards.OUTLOOK_CLASSIC, "FW: x")
    assert found is not None
    assert (found.to, found.cc) == ((), (DAN,))  # `To: Bo Agent` names no address
    found = read_forwarded(forwards.GMAIL_PLAIN, "Fwd: x")
    assert found is not None
    assert found.to == (("Bo Agent", "bo@example.com"),)
    assert found.cc == (DAN, ("support", "support@example.com"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Just a question about my invoice.",
        "---------- Forwarded message ---------\n\nno headers at all",
        "---------- Forwarded message ---------\nFrom: nobody\nSubject: x\n\ntext",
        "---------- Forwarded message ---------\nFrom: <not an address>\n",
        "Begin forwarded message:\n" + "From: a@b.example\n" * 0,
        "From: Cleo <cleo@example.org>\nThe new sender line in my letter.",  # no Sent/Date
        "On Mon, Dec 7, 2026 Cleo <cleo@example.org> wrote:\n> quoted",  # a reply
    ],
)
def test_text_without_a_usable_block_is_no_forward(text):
    assert read_forwarded(text, "Fwd: x") is None


def test_an_outlook_block_counts_only_under_a_forwards_subject():
    assert read_forwarded(forwards.OUTLOOK_NEW, "RE: The printer jams") is None
    assert read_forwarded(forwards.OUTLOOK_NEW, "AW: The printer jams") is None
    # Gmail's and Apple's markers say "forwarded" themselves.
    assert read_forwarded(forwards.GMAIL_PLAIN, "The printer jams") is not None
    assert read_forwarded(forwards.APPLE_PLAIN, "") is not None


@pytest.mark.parametrize(
    ("subject", "forward", "bare"),
    [
        ("Fwd: The printer jams", True, "The printer jams"),
        ("FW: RE: The printer jams", True, "RE: The printer jams"),
        ("WG: WG: Drucker", True, "Drucker"),
        ("fwd[2]: x", True, "x"),
        ("Re: The printer jams", False, "Re: The printer jams"),
        ("Forward planning", False, "Forward planning"),
        ("", False, ""),
    ],
)
def test_forward_subjects(subject, forward, bare):
    assert is_forward_subject(subject) is forward
    assert without_forward_prefix(subject) == bare


def test_the_first_block_is_the_forward_and_what_follows_is_its_text():
    """A forward of a forward: the outer block names the one who sent it on; the inner
    block stays in the text."""
    text = forwards.GMAIL_PLAIN.replace(ORIGINAL, "See below.\n\n" + forwards.GMAIL_PLAIN)
    found = read_forwarded(text, "Fwd: x")
    assert found is not None
    assert found.note == NOTE
    assert "---------- Forwarded message ---------" in found.text


def test_an_attached_original_is_read_with_its_files():
    email = parse_mime(forward(next(f for f in FIXTURES if f.name == "attached-rfc822")))
    found = email.forwarded
    assert found is not None
    assert (found.how, found.sender_name, found.sender) == (ATTACHED, *CLEO)
    assert (found.subject, found.cc) == ("The printer jams", (DAN,))
    assert found.text == ORIGINAL
    assert found.note == NOTE
    assert [f.filename for f in found.files] == ["jam.pdf"]


def test_an_attached_email_under_a_reply_subject_is_no_forward():
    raw = forward(next(f for f in FIXTURES if f.name == "attached-rfc822"))
    email = parse_mime(raw.replace(b"Subject: Fwd: The printer jams", b"Subject: Re: [#X] Hi", 1))
    assert email.forwarded is None


def test_an_unreadable_attached_original_falls_back_to_the_text():
    raw = (
        b"From: Bo <bo@example.com>\r\nSubject: Fwd: x\r\nMessage-ID: <a@b.example>\r\n"
        b'Content-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: nobody at all\r\nSubject: x\r\n\r\nno address\r\n--o--\r\n"
    )
    assert parse_mime(raw).forwarded is None


def test_a_json_payload_carries_its_forward_too():
    payload = {
        "from": "Bo <bo@example.com>",
        "to": "support@example.com",
        "subject": "Fwd: The printer jams",
        "text": forwards.APPLE_PLAIN,
        "message_id": "<json.fwd@example.com>",
    }
    found = parse_json(payload, b"{}").forwarded
    assert found is not None
    assert (found.how, found.sender) == (APPLE, "cleo@example.org")


HOSTILE = [
    "-" * 100_000,
    "From: " + "a" * 200_000,
    ("---------- Forwarded message ---------\n" + "From: <" * 5000) * 3,
    "Begin forwarded message:\n" + "> " * 100_000,
    "_" * 50_000 + "\nFrom: x@y.example\nSent: now\n",
    "---------- Forwarded message ---------\nFrom: " + "[a](mailto:" * 20_000,
    "---------- Forwarded message ---------\nFrom: " + "(" * 50_000 + "a@b.example",
    "---------- Forwarded message ---------\nFrom: x@y.example\nCc: " + "a@b.example, " * 20_000,
    "\n" * 200_000,
    "---------- Forwarded message ---------\nFrom: \x00\ud800 <a@b.example>\n",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_read_quickly_and_never_raises(text):
    # The thread's CPU time, not the wall clock: backtracking burns CPU, while a busy
    # machine (four test processes on two cores) only makes the wall clock longer.
    started = time.thread_time()
    read_forwarded(text, "Fwd: " + "Fwd: " * 2000)
    assert time.thread_time() - started < 1.0


lines = st.one_of(
    st.sampled_from(
        [
            "---------- Forwarded message ---------",
            "\\---------- Weitergeleitete Nachricht ---------",
            "-----Original Message-----",
            "-----Ursprüngliche Nachricht-----",
            "________________________________",
            "* * *",
            "Begin forwarded message:",
            "> Anfang der weitergeleiteten Nachricht:",
            ">",
            "",
            "From: Cleo <cleo@example.org>",
            "Von: [cleo@example.org](mailto:cleo@example.org)",
            "From: Cleo [mailto:cleo@example.org]",
            "From: <>",
            "Sent: today",
            "Datum: heute",
            "Subject: ",
            "To: a@b.example, <c@d.example>",
            "Cc: ((((",
            'Kopie: "',
        ]
    ),
    st.text(max_size=80),
)


@given(
    text=st.lists(lines, max_size=40).map("\n".join),
    subject=st.one_of(st.sampled_from(["Fwd: x", "FW: x", "WG:", "Re: x", ""]), st.text()),
)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_the_block_reader_never_raises(text, subject):
    found = read_forwarded(text, subject)
    if found is not None:
        assert "@" in found.sender
        assert found.how in (GMAIL, OUTLOOK, APPLE)
