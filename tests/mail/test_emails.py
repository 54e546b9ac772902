"""What we send, composed from the templates: headers, both bodies, the thread."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.policy import SMTP

import pytest

from supportdesk.core.config import Settings
from supportdesk.files.storage import LocalStorage
from supportdesk.mail.outbound.attached import AttachedFile, AttachmentReader, mime_boundary
from supportdesk.mail.outbound.compose import (
    MAX_REFERENCES,
    NOTICE_HEADER,
    EmailComposer,
    Quote,
    echoed_subject,
    thread_headers,
)
from supportdesk.mail.outbound.sender import (
    PermanentFailure,
    build_message,
    message_bytes,
    wire_bytes,
)
from supportdesk.web.templating import make_templates

TICKET = {
    "pid": "202611-00042",
    "subject": "Printer <b>jams</b>",
    "requester_email": "cleo@example.org",
    "requester_name": "Cleo & Co",
    "priority": "HIGH",
    "status": "OPEN",
}


def _composer(mail_from="support@acme.example", company="Acme") -> EmailComposer:
    settings = Settings(mail_from=mail_from, company_name=company, environment="test")
    return EmailComposer.from_settings(make_templates(), settings)


def _wire(row, default_from="x@example.com"):
    """What the SMTP server receives, parsed as a mail client would."""
    raw = build_message(row, default_from).as_bytes()
    return message_from_bytes(raw, policy=policy.default), raw


def _row(email, **over):
    """The outbox row queue_email would write."""
    return {
        "from_address": email.from_address,
        "to_address": email.to_address,
        "reply_to": email.reply_to,
        "subject": email.subject,
        "created_at": datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
        "message_id": email.message_id,
        "in_reply_to": email.in_reply_to,
        "references": email.references,
        "headers": email.headers,
        "body_text": email.body_text,
        "body_html": email.body_html,
    } | over


@pytest.mark.parametrize(
    ("mail_from", "expected"),
    [
        ("support@acme.example", "Acme <support@acme.example>"),
        ("Acme Help <help@acme.example>", "Acme Help <help@acme.example>"),
    ],
)
def test_from_carries_the_company_name_and_reply_to_the_address(mail_from, expected):
    email = _composer(mail_from).acknowledgement(TICKET, None)
    assert email.from_address == expected
    local, domain = expected.rsplit("<", 1)[1].rstrip(">").split("@")
    assert email.reply_to.startswith(f"{local}+202611-00042.")
    assert email.reply_to.endswith(f"@{domain}")
    assert email.message_id.startswith("<sd.202611-00042.ack.")
    assert email.message_id.endswith(f"@{domain}>")


def test_the_acknowledgement(tmp_path):
    email = _composer().acknowledgement(TICKET, "<original@customer.example>")
    assert email.kind == "ACKNOWLEDGEMENT"
    assert email.subject == "[#202611-00042] We received your request: Printer <b>jams</b>"
    assert email.headers == {"Auto-Submitted": "auto-replied"}
    assert email.in_reply_to == email.references == "<original@customer.example>"
    assert email.body_text.startswith("Hello,\n")
    assert "202611-00042" in email.body_text
    # The HTML alternative escapes what customers typed.
    assert "Printer &lt;b&gt;jams&lt;/b&gt;" in email.body_html
    # Whoever used the form chose the name and the text: neither is echoed (issue 10).
    for text in (email.body_text, email.body_html):
        assert "Cleo" not in text
        assert TICKET["subject"] in text or "&lt;b&gt;" in text
    message, _ = _wire(_row(email))
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Date"] == "Thu, 26 Nov 2026 12:00:00 +0000"
    assert message["Subject"] == email.subject
    assert message["Message-ID"] == email.message_id


def test_the_acknowledgement_echoes_at_most_120_characters_of_the_subject():
    long = "Win a prize " * 30 + "at https://phish.example/now"
    email = _composer().acknowledgement(TICKET | {"subject": long}, None)
    echoed = email.subject.split("We received your request: ", 1)[1]
    assert len(echoed) == 120
    assert echoed.endswith("…")
    assert "phish.example" not in email.body_text
    assert "phish.example" not in email.body_html


@pytest.mark.parametrize(
    ("subject", "echoed"),
    [
        ("Printer jams on floor 2", "Printer jams on floor 2"),
        ("Verify at https://evil.example/pay now", "Verify at [link removed] now"),
        ("see www.evil.example/x", "see [link removed]"),
        ("write to help@evil.example", "write to [link removed]"),
        ("pay at pay-here.zip today", "pay at pay-here[.]zip today"),
        ("see пример.рф now", "see пример[.]рф now"),
        ("call 192.0.2.10:8080", "call 192[.]0[.]2[.]10:8080"),
        ("Version 2.5.1 crashes, e.g. on boot", "Version 2.5.1 crashes, e.g. on boot"),
        ("report.pdf is missing", "report[.]pdf is missing"),
    ],
)
def test_an_echoed_subject_carries_no_link(subject, echoed):
    """Issue 18, finding 6: whoever forges the sender chooses the subject, and our
    acknowledgement carries it from our address: nothing a mail client would link."""
    assert echoed_subject(subject) == echoed


def test_a_staff_reply_links_and_escapes_its_body_in_html():
    body = "See https://acme.example/fix?a=1&b=2.\n<script>x</script>"
    email = _composer().staff_reply(TICKET, body, {"name": "Ana"}, ["<a@x>", "<b@x>"])
    assert email.kind == "REPLY"
    assert email.headers == {}
    assert email.subject == "[#202611-00042] Re: Printer <b>jams</b>"
    assert email.in_reply_to == "<b@x>"
    assert email.references == "<a@x> <b@x>"
    assert email.body_text.startswith(body)
    assert "Ana\nAcme" in email.body_text
    assert '<a href="https://acme.example/fix?a=1&amp;b=2"' in email.body_html
    assert "&lt;script&gt;x&lt;/script&gt;" in email.body_html
    assert "<script>" not in email.body_html
    message, _ = _wire(_row(email))
    assert message.get_body(("plain",)).get_content().startswith(body)
    assert message.get_body(("html",)).get_content() == email.body_html
    assert "Auto-Submitted" not in message


def test_an_assignment_notice_goes_to_the_assignee_with_a_link():
    email = _composer().assignment_notice(
        TICKET, {"name": "Bo", "email": "bo@acme.example"}, {"name": "Ana"}
    )
    assert email.kind == "ASSIGNMENT"
    assert email.to_address == "bo@acme.example"
    # Which notice it is, for a staff member's mail filter (section 12).
    assert email.headers == {"Auto-Submitted": "auto-generated", NOTICE_HEADER: "assigned"}
    assert "http://127.0.0.1:8000/tickets/202611-00042" in email.body_text
    assert 'href="http://127.0.0.1:8000/tickets/202611-00042"' in email.body_html


def test_references_keep_the_first_and_the_latest():
    ids = [f"<m{i}@x>" for i in range(50)]
    in_reply_to, references = thread_headers(ids)
    kept = references.split()
    assert in_reply_to == "<m49@x>"
    assert len(kept) == MAX_REFERENCES
    assert kept[0] == "<m0@x>"
    assert kept[-1] == "<m49@x>"
    assert kept[1] == "<m31@x>"
    assert thread_headers([]) == (None, None)


@pytest.mark.parametrize(
    "over",
    [
        {"subject": "Two\nlines"},
        {"subject": "Bcc: x@evil.example\r\nX: y"},
        {"headers": {"X-Note": "a\nBcc: x@evil.example"}},
        {"to_address": "not an address"},
        {"to_address": "ünïcode@example.org"},
        {"to_address": "two@at@example.org"},
        {"in_reply_to": "<a@b>\nBcc: x@evil.example"},
    ],
)
def test_a_row_that_cannot_be_an_email_fails_for_good(over):
    email = _composer().acknowledgement(TICKET, None)
    with pytest.raises(PermanentFailure):
        build_message(_row(email, **over), "x@example.com")


def test_non_ascii_names_and_subjects_and_long_lines_survive_the_wire():
    ticket = TICKET | {"subject": "Drucker überhitzt 🔥", "requester_name": "Jürgen"}
    composer = _composer("support@acme.example", company="Büro Müller GmbH")
    long_line = "word " * 400  # one 2,000-character line
    email = composer.staff_reply(ticket, long_line + "\nGrüße", {"name": "Zöe"}, [])
    message, raw = _wire(_row(email))
    assert message["From"] == "Büro Müller GmbH <support@acme.example>"
    assert message["Subject"] == "[#202611-00042] Re: Drucker überhitzt 🔥"
    assert raw.isascii()  # RFC 2047 headers, quoted-printable bodies
    assert max(len(line.rstrip(b"\r")) for line in raw.split(b"\n")) <= 998
    text = message.get_body(("plain",)).get_content()
    assert text.startswith(long_line.rstrip() or long_line)
    assert "Grüße" in text
    assert "Zöe" in text


@pytest.mark.parametrize("kind", ["acknowledgement", "staff_reply"])
def test_the_pid_and_the_signed_link_are_put_in_after_rendering(kind):
    """Bodies are rendered with marks where the PID and the customer's link go, then
    numbered: each mark is replaced, the link escaped in HTML, and the link opens the view."""
    composer = _composer()
    if kind == "acknowledgement":
        email = composer.acknowledgement(TICKET, None)
    else:
        email = composer.staff_reply(TICKET, "Try tray 1.", {"name": "Ann"}, [])
    link = re.search(r"https?://\S+/t/\S+", email.body_text)[0]
    assert link == composer.customer_url(TICKET["pid"])
    assert f'href="{html.escape(link)}"' in email.body_html
    for body in (email.body_text, email.body_html):
        assert "\x00" not in body
        assert ".pid" not in body
        assert ".url" not in body
        assert TICKET["pid"] in body
    assert email.subject.startswith(f"[#{TICKET['pid']}] ")
    assert email.message_id.startswith(f"<sd.{TICKET['pid']}.")


def test_two_unnumbered_acknowledgements_get_numbers_of_their_own():
    composer = _composer()
    first = composer.unnumbered_acknowledgement("Printer jams", "a@example.org", None)
    second = composer.unnumbered_acknowledgement("Printer jams", "b@example.org", None)
    one, two = first.numbered("202611-00001"), second.numbered("202611-00002")
    assert "202611-00001" in one.body_text
    assert "202611-00002" not in one.body_text
    assert "202611-00002" in two.body_html
    assert "202611-00001" not in two.body_html
    assert one.message_id != two.message_id


def test_a_requester_at_an_intranet_host_without_a_dot_is_answered():
    """Issue 20: mail from `redacted@redacted` opens a ticket; its acknowledgement must be
    sent, not refused as no address (the database holds such addresses since 0008)."""
    email = _composer().acknowledgement(TICKET | {"requester_email": "redacted@redacted"}, None)
    message, _ = _wire(_row(email, to_address="redacted@redacted"))
    assert message["To"].addresses[0].addr_spec == "redacted@redacted"


# --- files as MIME parts, the quoted history (section 11) -------------------------------------

FILE = {"id": 7, "filename": "log.txt", "size": 1000, "url": "https://desk.example/a/7?sig=x"}


def test_a_staff_reply_attaches_its_files_up_to_the_limit_and_links_them_past_it():
    composer = _composer()
    composer.attachment_max_bytes = 2000
    two = [FILE, FILE | {"id": 8, "filename": "b.txt"}]
    attached = composer.staff_reply(TICKET, "See the files.", {"name": "Ana"}, [], two)
    assert attached.attachment_ids == (7, 8)
    assert "https://desk.example/a/7" not in attached.body_text + attached.body_html
    three = [*two, FILE | {"id": 9, "size": 1}]  # 2,001 bytes together
    linked = composer.staff_reply(TICKET, "See the files.", {"name": "Ana"}, [], three)
    assert linked.attachment_ids == ()
    assert "log.txt (1,000 bytes): https://desk.example/a/7?sig=x" in linked.body_text
    assert 'href="https://desk.example/a/7?sig=x"' in linked.body_html


def test_a_first_message_has_no_thread_no_quote_and_no_files():
    """What a ticket staff open by writing first sends (staff_reply with defaults only)."""
    email = _composer().staff_reply(TICKET, "Hello Cleo,\nabout your order.", {"name": "Ana"})
    assert email.in_reply_to is None
    assert email.references is None
    assert email.attachment_ids == ()
    assert "wrote:" not in email.body_text
    assert "<blockquote" not in email.body_html


def test_the_quote_is_escaped_in_html_and_prefixed_in_text():
    quote = Quote(
        "Cleo <cleo@example.org> & Co",
        datetime(2026, 11, 26, 13, 5, tzinfo=timezone(timedelta(hours=1))),
        "\nHello,\n\n<img src=x onerror=alert(1)> & more\n  indented\n\n",
    )
    email = _composer().staff_reply(TICKET, "Answer.", {"name": "Ana"}, [], quote=quote)
    intro = "On 26 Nov 2026 at 12:05 UTC, Cleo <cleo@example.org> & Co wrote:"
    assert email.body_text.rstrip().endswith(
        f"{intro}\n> Hello,\n>\n> <img src=x onerror=alert(1)> & more\n>   indented"
    )
    assert "On 26 Nov 2026 at 12:05 UTC, Cleo &lt;cleo@example.org&gt; &amp; Co wrote:" in (
        email.body_html
    )
    assert (
        ">Hello,\n\n&lt;img src=x onerror=alert(1)&gt; &amp; more\n  indented</blockquote>"
        in email.body_html
    )
    assert "<img" not in email.body_html


LONG_NAME = "Überweisung für Rechnung Nr. 2026-1147 \u2013 März, inkl. Mahngebühren " * 3 + ".pdf"


@pytest.mark.parametrize(
    "filename", ["report.pdf", 'odd "quoted" \\ name.txt', "Résumé.pdf", "日本語.txt", LONG_NAME]
)
def test_a_files_name_survives_the_wire_and_every_line_stays_short(filename):
    email = _composer().staff_reply(TICKET, "Attached.", {"name": "Ana"})
    data = bytes(range(256)) * 300
    file = AttachedFile(filename, "application/pdf", data)
    raw = wire_bytes(_row(email), "x@example.com", [file])
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    message = message_from_bytes(raw, policy=policy.default)
    [part] = message.iter_attachments()
    assert part.get_filename() == filename
    assert part.get_param("name") == filename
    assert part.get_content_type() == "application/pdf"
    assert part.get_payload(decode=True) == data


def test_the_same_row_and_files_make_the_same_bytes_and_other_ids_other_boundaries():
    email = _composer().staff_reply(TICKET, "Attached.", {"name": "Ana"})
    files = [
        AttachedFile("a.txt", "text/plain", b"one\n"),
        AttachedFile("b.pdf", "application/pdf", b"%PDF"),
    ]
    first = wire_bytes(_row(email), "x@example.com", files)
    assert wire_bytes(_row(email), "x@example.com", files) == first
    assert first.count(b"boundary=") == 2  # mixed, and the alternative inside it
    other = wire_bytes(_row(email, message_id="<other@acme.example>"), "x@example.com", files)
    assert re.findall(rb'boundary="([^"]+)"', first) != re.findall(rb'boundary="([^"]+)"', other)
    # Without files, text and HTML alone: the boundary is as stable.
    assert wire_bytes(_row(email), "x@example.com") == wire_bytes(_row(email), "x@example.com")


@pytest.mark.parametrize("sizes", [[0], [1, 57, 58], [200 * 1024, 3]])
def test_the_files_base64_put_in_after_the_generator_is_what_the_generator_makes(sizes):
    """message_bytes writes the files' base64 itself (fast): byte for byte what the email
    package makes of build_message, and what a parser reads back."""
    email = _composer().staff_reply(TICKET, "Attached.\n.a line with a dot", {"name": "Ana"})
    files = [
        AttachedFile(f"f{n}.bin", "application/octet-stream", bytes([n]) * size)
        for n, size in enumerate(sizes)
    ]
    row = _row(email, subject="Re: " + mime_boundary(email.message_id, -1))  # a lookalike
    fast = message_bytes(row, "x@example.com", files)
    assert fast == build_message(row, "x@example.com", files).as_bytes(policy=SMTP)
    message = message_from_bytes(fast, policy=policy.default)
    assert [p.get_payload(decode=True) for p in message.iter_attachments()] == [
        f.data for f in files
    ]
    wire = wire_bytes(row, "x@example.com", files)
    assert wire == re.sub(rb"(?m)^\.", b"..", fast) + (b"" if fast.endswith(b"\r\n") else b"\r\n")
    assert b"\r\n..a line with a dot" in wire


def test_a_file_erased_since_the_reply_was_written_is_a_permanent_failure(tmp_path):
    """The row names a file whose row is gone (erasure, section 13): never sent without it."""
    reader = AttachmentReader(LocalStorage(tmp_path))
    assert reader.read({"attachment_ids": []}) == []
    with pytest.raises(PermanentFailure, match="attachment 5 no longer exists: not sent"):
        reader.read({"attachment_ids": [4, 5], "attachments": [{"id": 4}]})
