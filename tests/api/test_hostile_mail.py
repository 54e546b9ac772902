"""What a hostile sender tries by email (issue 18): forged staff senders, a customer's own
tokens used as staff proof, a bare [#PID], a made-up token. Each sends the hostile mail
through the signed webhook and checks what was stored and queued."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.core.vocabulary import EMAIL_KINDS, MAX_BODY
from supportdesk.tickets.customer_replies import CustomerMessage
from supportdesk.tickets.inputs import NewMessage, TicketChange
from supportdesk.tickets.timed import TimedTickets
from supportdesk.web.services import build_services
from supportdesk.web.templating import linkify
from tests.conftest import shared_app
from tests.mail.corpus import PNG, _b64, msg
from tests.webhook import fill, post_raw
from tests.webhook import rows as _one

# Each of these makes a message automatic (RFC 3834 and what help desks learned).
AUTO_REPLY_SIGNALS = [
    "Auto-Submitted: auto-replied",
    "Precedence: auto_reply",
    "List-Id: <finance.example.com>",
    "X-Auto-Response-Suppress: All",
    "Return-Path: <>",
]


def _staff_messages(db, ticket_id: int) -> list[dict]:
    return _one(
        db,
        "SELECT author_user_id, visibility::text FROM ticket_messages "
        "WHERE ticket_id = %s AND author = 'STAFF'",
        ticket_id,
    )


def _writes_by(db, user_id: int) -> list[dict]:
    """What the user wrote, by the timeline: their notes and messages."""
    return _one(
        db,
        "SELECT type::text FROM ticket_events WHERE actor_id = %s "
        "AND type IN ('NOTE_ADDED', 'MESSAGE_ADDED', 'ATTACHMENT_ADDED')",
        user_id,
    )


def _queued(db, kind: str) -> list[dict]:
    return _one(
        db, "SELECT to_address, ticket_id FROM email_outbox WHERE kind = %s ORDER BY id", kind
    )


def _ana(db) -> dict:
    [ana] = _one(db, "SELECT id FROM users WHERE email = 'ana@example.com'")
    return ana


# --- finding 1: a forged staff From with an auto-reply signal ------------------------------


@pytest.mark.parametrize("signal", AUTO_REPLY_SIGNALS)
def test_a_forged_staff_autoreply_is_no_internal_note_in_their_name(api, db, world, signal):
    """It was an INTERNAL note, with files, in the admin's name: a "new bank details" note
    signed by the CFO. A staff address without proof is a stranger."""
    raw = fill(
        msg(f"""
From: Ana Admin <ana@example.com>
To: support@example.com
Subject: Re: [#{{PID}}] The printer jams
{signal}
Message-ID: <forged.note.1@evil.example>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

Our bank details changed; pay the invoice to the account attached.
--b
Content-Type: image/png
Content-Disposition: attachment; filename="bank.png"
Content-Transfer-Encoding: base64

{_b64(PNG)}
--b--
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != world["{PID}"]
    assert _staff_messages(db, world["ticket"]["id"]) == []
    assert _writes_by(db, _ana(db)["id"]) == []
    [message] = _one(
        db,
        "SELECT author::text, author_user_id FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )
    assert message == {"author": "CUSTOMER", "author_user_id": None}


def test_a_forged_assignee_autoreply_is_no_note_either(api, db, world):
    raw = fill(
        msg("""
From: Bo Agent <bo@example.com>
To: support@example.com
Subject: Automatic reply: [#{PID}] The printer jams
Auto-Submitted: auto-replied
Message-ID: <forged.note.2@evil.example>

I am out of the office; call my private number 555-0100 for urgent matters.
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    assert _staff_messages(db, world["ticket"]["id"]) == []


# --- finding 4: the customer's own tokens are no staff proof --------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "In-Reply-To: {ACK_ID}\nReferences: {ACK_ID}\nTo: support@example.com",
        "To: {TOKEN_ADDR}",
    ],
    ids=["acknowledgement's message-id", "signed reply-to address"],
)
def test_a_requester_cannot_reply_as_staff_with_their_own_tokens(api, db, world, where):
    """Replying to their own acknowledgement with `From: <an admin>` posted a public reply
    in the admin's name, moved the ticket to IN_PROGRESS, and the desk emailed it out."""
    raw = fill(
        msg(f"""
From: Ana Admin <ana@example.com>
{where}
Subject: Re: [#{{PID}}] We received your request: The printer jams
Message-ID: <forged.reply.1@evil.example>

We refund everything; confirm your card number by reply.
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != world["{PID}"]
    assert _staff_messages(db, world["ticket"]["id"]) == []
    assert _queued(db, "REPLY") == []
    [ticket] = _one(db, "SELECT status::text FROM tickets WHERE id = %s", world["ticket"]["id"])
    assert ticket == {"status": "RESOLVED"}


def test_our_emails_carry_staff_tokens_only_to_staff(inbound_settings, db, world):
    """The proof a staff reply needs is in the notices to staff, never in what a customer
    receives (their acknowledgement, replies): every kind of email, checked."""
    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    pid = world["{PID}"]
    services.messages.post(world["bo"], pid, NewMessage("Try tray 1."), channel="API")
    services.customers.add(
        world["ticket"]["id"], CustomerMessage("Still jams.", "WEB", "cleo@example.org")
    )
    # The reply reopened the ticket: resolved again, it is closed by the scheduler's job a
    # week later (AUTO_CLOSE_AFTER), with the notice to the customer.
    services.tickets.update(world["bo"], pid, TicketChange(status="RESOLVED"))
    week_later = datetime.now(UTC) + timedelta(days=8)
    timed = TimedTickets(
        db,
        make_redis(inbound_settings),
        services.composer,
        auto_close_after=timedelta(days=7),
        clock=lambda: week_later,
    )
    assert timed.close_stale_resolved() == 1
    tokens = services.composer.tokens
    rows = _one(db, "SELECT kind::text, message_id, reply_to FROM email_outbox ORDER BY id")
    # Every kind but the password-reset link, which belongs to no ticket (it carries no
    # token: tests/api/test_password_reset.py).
    assert {row["kind"] for row in rows} == set(EMAIL_KINDS) - {"PASSWORD_RESET"}
    audiences = {
        row["kind"]: (
            tokens.in_message_id(row["message_id"]).audience,
            tokens.in_address(row["reply_to"]).audience,
        )
        for row in rows
    }
    assert audiences == {
        "ACKNOWLEDGEMENT": ("CUSTOMER", "CUSTOMER"),
        "REPLY": ("CUSTOMER", "CUSTOMER"),
        "ASSIGNMENT": ("STAFF", "STAFF"),
        "NOTICE": ("STAFF", "STAFF"),
        "CLOSE_NOTICE": ("CUSTOMER", "CUSTOMER"),
    }


def test_a_staff_token_lets_only_staff_who_see_the_ticket_write(api, db, world, make_staff):
    """The assignment notice's token, replied to by another AGENT (the notice was
    forwarded to them) and by a deactivated one: neither may write to the ticket."""
    make_staff("AGENT", name="Dee Agent", email="dee@example.com")
    make_staff("ADMIN", name="Old Admin", email="old@example.com", is_active=False)
    for n, sender in enumerate(["Dee Agent <dee@example.com>", "Old <old@example.com>"]):
        raw = fill(
            msg(f"""
From: {sender}
To: support@example.com
Subject: Re: [#{{PID}}] Assigned to you: The printer jams
In-Reply-To: {{NOTICE_ID}}
Message-ID: <forwarded.notice.{n}@example.com>

I will take care of the refund to the new account.
"""),
            world,
        )
        result = post_raw(api, raw, status=201).json
        assert result["outcome"] == "created", sender
    assert _staff_messages(db, world["ticket"]["id"]) == []
    assert _queued(db, "REPLY") == []


@pytest.mark.parametrize(
    "sender", ["Ana Admin <ana@example.com>", "Cleo Customer <cleo@example.org>"]
)
def test_a_made_up_signature_is_no_token(api, db, world, sender):
    """Mail from an ADMIN's (or the requester's) address to
    `support+<PID>.000000000000@…`, the right ticket number, a wrong signature and no
    [#PID] in the subject: a new ticket, no reply, nothing written to the ticket."""
    raw = fill(
        msg(f"""
From: {sender}
To: support+{{PID}}.000000000000@example.com
Subject: Re: the printer
Message-ID: <made.up.token@evil.example>

Your refund is ready at http://evil.example/refund
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != world["{PID}"]
    assert _queued(db, "REPLY") == []
    thread = _one(db, "SELECT id FROM ticket_messages WHERE ticket_id = %s", world["ticket"]["id"])
    assert len(thread) == 1  # the ticket's own first message, nothing more


def _staff_reply_with(world, extra_headers: str, body: str) -> bytes:
    return fill(
        msg(f"""
From: Bo Agent <bo@example.com>
To: support@example.com
Subject: Re: [#{{PID}}] Assigned to you: The printer jams
In-Reply-To: {{NOTICE_ID}}
Message-ID: <bo.reply.with.email@example.com>
{extra_headers}
{body}"""),
        world,
    )


def test_a_staff_reply_carrying_an_email_is_a_note_never_mailed(api, db, world):
    """A forwarded email, or the whole message kept because it could not be read, holds
    the staff token of the email it answers: linked to the customer as a file, it would
    let them write as staff from then on."""
    raw = _staff_reply_with(
        world,
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
        """
--b
Content-Type: text/plain

The notice is attached for the record.
--b
Content-Type: message/rfc822
Content-Disposition: attachment; filename="notice.eml"

From: Support Desk <support@example.com>
To: bo@example.com
Reply-To: {TOKEN}
Subject: Assigned to you
Message-ID: {NOTICE_ID}

You were assigned.
--b--
""".replace("{TOKEN}", "support+{PID}.staffsignatur@example.com"),
    )
    result = post_raw(api, fill(raw, world), status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", world["{PID}"])
    [message] = _one(
        db,
        "SELECT author::text, visibility::text FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )
    assert message == {"author": "STAFF", "visibility": "INTERNAL"}
    assert _queued(db, "REPLY") == []


def test_a_staff_reply_not_read_in_time_is_a_note_never_mailed(inbound_settings, db, world):
    impatient = inbound_settings.replace(inbound_parse_seconds=0.05)
    app = webtest.TestApp(shared_app(impatient, db))
    raw = _staff_reply_with(
        world, "Content-Type: text/html\n", "<p>The fix:</p>" + "<p>step</p>" * 150_000
    )
    result = post_raw(app, raw, status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", world["{PID}"])
    [message] = _one(
        db,
        "SELECT body, visibility::text FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )
    assert message["body"].startswith("(This email could not be read in time")
    assert message["visibility"] == "INTERNAL"
    assert _queued(db, "REPLY") == []


# --- finding 5: a bare [#PID] adds the message, marked, and changes nothing ----------------


def test_a_forged_requester_with_a_bare_pid_reopens_nothing_and_notifies_nobody(api, db, world):
    raw = fill(
        msg("""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: Re: [#{PID}] The printer jams
Message-ID: <forged.requester.1@evil.example>

Bo, the repair fee goes to IBAN XX00 0000 from now on.
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", world["{PID}"])
    [message] = _one(
        db,
        "SELECT matched_by_subject_only FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )
    assert message == {"matched_by_subject_only": True}
    [ticket] = _one(db, "SELECT status::text FROM tickets WHERE id = %s", world["ticket"]["id"])
    assert ticket == {"status": "RESOLVED"}
    assert _queued(db, "NOTICE") == []
    [event] = _one(
        db,
        "SELECT data FROM ticket_events WHERE type = 'EMAIL_RECEIVED' AND ticket_id = %s",
        world["ticket"]["id"],
    )
    assert event["data"]["matched_by_subject_only"] is True


@pytest.mark.parametrize(
    "where",
    ["In-Reply-To: {ACK_ID}\nTo: support@example.com", "To: {TOKEN_ADDR}"],
    ids=["acknowledgement's message-id", "signed reply-to address"],
)
def test_a_reply_with_our_token_still_reopens_and_notifies(api, db, world, where):
    raw = fill(
        msg(f"""
From: Cleo Customer <cleo@example.org>
{where}
Subject: Re: [#{{PID}}] The printer jams
Message-ID: <cleo.again.1@example.org>

It jams again.
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", world["{PID}"])
    [ticket] = _one(db, "SELECT status::text FROM tickets WHERE id = %s", world["ticket"]["id"])
    assert ticket == {"status": "OPEN"}
    assert [n["to_address"] for n in _queued(db, "NOTICE")] == ["bo@example.com"]
    [message] = _one(
        db,
        "SELECT matched_by_subject_only FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )
    assert message == {"matched_by_subject_only": False}


def test_the_mark_shows_on_the_pages_and_in_the_api(
    api, db, world, make_staff, bearer, client, inbound_settings
):
    raw = fill(
        msg("""
From: cleo@example.org
To: support@example.com
Subject: [#{PID}] one more thing
Message-ID: <subject.only.page@example.org>

Second floor.
"""),
        world,
    )
    post_raw(api, raw, status=201)
    admin = make_staff("ADMIN", email="root@example.com")
    pid = world["{PID}"]
    thread = client.get(f"/api/tickets/{pid}/messages", headers=bearer(admin)).json["items"]
    assert [m["matched_by_subject_only"] for m in thread] == [False, True]
    page = client.get(f"/tickets/{pid}", headers=bearer(admin))
    assert page.text.count("Matched by subject only") == 1
    # The customer, who may not have written it, sees it marked on their view too.
    composer = build_services(inbound_settings, db, make_redis(inbound_settings)).composer
    view = api.get(composer.customer_url(pid).removeprefix(inbound_settings.public_base_url))
    assert view.text.count("Not verified as yours") == 1


# --- finding 7: one email must not make a ticket page unreadable ----------------------------


def _finishes(seconds: float, work):
    """`work()`'s result, or a failure if it is still running after `seconds` (it was
    quadratic: minutes for one page, and each view killed a worker)."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"still running after {seconds} s"
    return result[0]


def test_a_huge_padded_link_is_cut_kept_whole_as_a_file_and_renders(
    api, db, world, make_staff, bearer, inbound_settings
):
    text = "Look: http://x.io/" + ")" * 260_000
    raw = (
        msg("""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: A long one
Message-ID: <huge.link.1@example.org>

""")
        + text.encode()
    )
    result = post_raw(api, raw, status=201).json
    [message] = _one(
        db, "SELECT body, full_body FROM ticket_messages WHERE id = %s", result["message_id"]
    )
    assert len(message["body"]) <= MAX_BODY
    assert message["body"].startswith("Look: http://x.io/)))")
    assert "the attached email-text.txt" in message["body"]
    [file] = _one(
        db,
        "SELECT filename, content_type, sha256 FROM attachments WHERE message_id = %s",
        result["message_id"],
    )
    assert file == {
        "filename": "email-text.txt",
        "content_type": "text/plain",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    admin = make_staff("ADMIN", email="root@example.com")
    page = _finishes(20, lambda: api.get(f"/tickets/{result['ticket']}", headers=bearer(admin)))
    assert 'href="http://x.io/"' in page.text
    composer = build_services(inbound_settings, db, make_redis(inbound_settings)).composer
    link = composer.customer_url(result["ticket"]).removeprefix(inbound_settings.public_base_url)
    view = _finishes(20, lambda: api.get(link))
    assert "Look:" in view.text


def test_a_long_html_only_email_is_cut_too(api, db):
    html = "<p>" + "word " * 30_000 + "</p>"
    raw = (
        msg("""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: HTML only
Message-ID: <long.html.1@example.org>
Content-Type: text/html; charset=utf-8

""")
        + html.encode()
    )
    result = post_raw(api, raw, status=201).json
    [message] = _one(
        db, "SELECT body, full_body FROM ticket_messages WHERE id = %s", result["message_id"]
    )
    assert len(message["body"]) <= MAX_BODY
    assert message["full_body"] is None or len(message["full_body"]) <= MAX_BODY
    [file] = _one(db, "SELECT filename, size_bytes FROM attachments")
    assert file["filename"] == "email-text.txt"
    assert file["size_bytes"] == len(("word " * 30_000).strip())


def test_linkify_is_linear_on_a_link_padded_with_parentheses():
    """The renderer alone, on text longer than any stored body: it counted the
    parentheses again for each one it trimmed (about 3 minutes for this one)."""
    shown = _finishes(10, lambda: str(linkify("see http://x.io/a_(b)" + ")" * 300_000 + ".")))
    assert shown.startswith('see <a href="http://x.io/a_(b)" ')
    assert shown.endswith(")" * 300_000 + ".")


# --- finding 6: acknowledgements to one inbox, one domain, and in all -----------------------


def _new_ticket_mail(sender: str, n: int, subject: str = "Invoice overdue") -> bytes:
    return msg(f"""
From: {sender}
To: support@example.com
Subject: {subject}
Message-ID: <ack.{n}@evil.example>

Please check the attached invoice.
""")


def _acks(db) -> list[dict]:
    return _one(
        db,
        "SELECT to_address, subject, body_text, body_html FROM email_outbox "
        "WHERE kind = 'ACKNOWLEDGEMENT' ORDER BY id",
    )


def test_address_variants_share_their_mailboxs_acknowledgements(api, db, inbound_settings):
    """`victim+1@…`, `vic.tim@…` and case variants each got their own 5 a day: 10
    acknowledgements with a phishing subject went from our address into one inbox."""
    variants = [
        "victim@corp.example",
        "victim+1@corp.example",
        "victim+2@corp.example",
        "vic.tim@corp.example",
        "VICTIM@corp.example",
        "Vic.Tim+x@Corp.Example",
        "v.i.c.t.i.m@corp.example",
        "victim+3@corp.example",
        "vict.im+4@corp.example",
        "victim+5@corp.example",
    ]
    for n, sender in enumerate(variants):
        assert post_raw(api, _new_ticket_mail(sender, n), status=201).json["outcome"] == "created"
    assert len(_one(db, "SELECT id FROM tickets")) == len(variants)  # every one is kept
    assert len(_acks(db)) == inbound_settings.acks_per_address


def test_the_public_form_shares_them_too(client, db, settings):
    for n, email in enumerate(["victim+a@corp.example", "vic.tim@corp.example"] * 4):
        client.post_json(
            "/api/tickets",
            {"name": "V", "email": email, "subject": "Hi", "body": "Hello"},
            extra_environ={"REMOTE_ADDR": f"10.0.1.{n}"},
            status=201,
        )
    assert len(_acks(db)) == settings.acks_per_address


@pytest.mark.parametrize(
    ("limits", "senders", "acknowledged"),
    [
        # One domain an hour: mailboxes of their own, one company.
        ({"acks_per_domain": 3}, [f"user{n}@corp.example" for n in range(6)], 3),
        # All of them an hour: a domain each.
        ({"acks_per_hour": 4}, [f"user@corp{n}.example" for n in range(6)], 4),
        # A shared provider's users are strangers to each other: no domain budget there.
        ({"acks_per_domain": 3}, [f"user{n}@gmail.com" for n in range(6)], 6),
    ],
    ids=["per-domain", "overall", "shared-provider"],
)
def test_acknowledgements_have_domain_and_overall_budgets(
    inbound_settings, db, redis_client, limits, senders, acknowledged
):
    tight = inbound_settings.replace(**limits)
    app = webtest.TestApp(shared_app(tight, db))
    for n, sender in enumerate(senders):
        post_raw(app, _new_ticket_mail(sender, n), status=201)
    assert len(_one(db, "SELECT id FROM tickets")) == len(senders)
    assert len(_acks(db)) == acknowledged


def test_an_acknowledgement_echoes_no_link_from_the_subject(api, db):
    subject = "Account locked: verify at https://evil.example/login or mail help@evil.example"
    post_raw(api, _new_ticket_mail("victim@corp.example", 1, subject), status=201)
    [ack] = _acks(db)
    for part in (ack["subject"], ack["body_text"], ack["body_html"]):
        assert "evil.example" not in part
        assert "[link removed]" in part
    assert "Account locked: verify at" in ack["subject"]


def test_a_short_reply_over_a_long_history_is_shown_uncut(api, db, world):
    """Only the whole text is over the limit: it is cut and kept as a file; the new text
    shown is all there, without a word about cutting."""
    history = "\n".join(f"> line {n} of what was said before" for n in range(3_000))
    raw = fill(
        msg(f"""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: Re: [#{{PID}}] The printer jams
In-Reply-To: {{ACK_ID}}
Message-ID: <short.reply.long.history@example.org>

It works now, thank you!

On Tue, 24 Nov 2026 at 10:00, Support <support@example.com> wrote:
{history}
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    [message] = _one(
        db, "SELECT body, full_body FROM ticket_messages WHERE id = %s", result["message_id"]
    )
    assert message["body"] == "It works now, thank you!"
    assert message["full_body"].endswith("kept whole in the attached email-text.txt.]")
    assert _one(db, "SELECT filename FROM attachments") == [{"filename": "email-text.txt"}]
