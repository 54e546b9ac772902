"""POST /api/inbound/email: the corpus of real-world-shaped emails, signatures, duplicates."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import tracemalloc

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.core.signing import WebhookSignature
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.mail.corpus import CASES, NINE_MIB, Case, msg
from tests.webhook import fill, post_json, post_raw, signed
from tests.webhook import rows as _one


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_corpus(api, db, world, case: Case):
    resp = post_raw(api, fill(case.raw, world), status=201)
    result = resp.json
    [message] = _one(db, "SELECT * FROM ticket_messages WHERE id = %s", result["message_id"])
    [ticket] = _one(db, "SELECT * FROM tickets WHERE id = %s", message["ticket_id"])
    assert message["author"] == case.author
    assert message["channel"] == "EMAIL"
    for text in case.body:
        assert text in message["body"], message["body"]
    for text in case.body_excludes:
        assert text not in message["body"], message["body"]
    assert (result["automatic"] is not None) == case.automatic, result
    files = _one(
        db,
        "SELECT filename, content_type FROM attachments WHERE message_id = %s ORDER BY id",
        message["id"],
    )
    assert [(f["filename"], f["content_type"]) for f in files] == list(case.files)
    if case.subject is not None:
        assert ticket["subject"] == case.subject

    if case.outcome == "threaded":
        assert result["outcome"] == "threaded"
        assert ticket["pid"] == world["{PID}"]
        # A person's reply reopens the RESOLVED ticket; a machine's never does, nor does one
        # that only the [#PID] in its subject ties to the ticket; a staff reply from the
        # inbox leaves the status to staff.
        reopens = case.author == "CUSTOMER" and not (case.automatic or case.subject_only)
        assert ticket["status"] == ("OPEN" if reopens else "RESOLVED")
        assert message["matched_by_subject_only"] == case.subject_only
    else:
        assert result["outcome"] == "created"
        assert ticket["pid"] not in (world["{PID}"], world["{CLOSED_PID}"])
        assert ticket["channel"] == "EMAIL"
        assert result["acknowledged"] == case.acknowledged
        acks = _one(
            db,
            "SELECT in_reply_to FROM email_outbox WHERE ticket_id = %s "
            "AND kind = 'ACKNOWLEDGEMENT'",
            ticket["id"],
        )
        assert len(acks) == (1 if case.acknowledged else 0)
        if acks:  # it answers the customer's email, unless that had no Message-ID
            made_up = message["email_message_id"].endswith("@inbound.invalid>")
            expected_reply_to = None if made_up else message["email_message_id"]
            assert acks[0]["in_reply_to"] == expected_reply_to
        follows = world["closed"]["id"] if case.outcome == "follow-up" else None
        assert ticket["follows_up_id"] == follows


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25


def test_a_reply_notifies_the_assignee_and_the_timeline_says_who(api, db, world):
    case = next(c for c in CASES if c.name == "gmail-reply-with-quoted-history")
    post_raw(api, fill(case.raw, world), status=201)
    notices = _one(db, "SELECT to_address, subject FROM email_outbox WHERE kind = 'NOTICE'")
    assert notices == [
        {
            "to_address": "bo@example.com",
            "subject": f"[#{world['{PID}']}] Cleo Customer replied: The printer jams",
        }
    ]
    events = _one(
        db,
        "SELECT type::text, actor_id, data FROM ticket_events WHERE ticket_id = %s ORDER BY id",
        world["ticket"]["id"],
    )
    assert [e["type"] for e in events][-2:] == ["EMAIL_RECEIVED", "STATUS_CHANGED"]
    assert events[-1]["actor_id"] is None  # the customer
    assert events[-1]["data"] == {"from": "RESOLVED", "to": "OPEN"}


def test_a_staff_reply_from_the_inbox_is_emailed_to_the_customer(api, db, world):
    case = next(c for c in CASES if c.name == "staff-answers-from-their-inbox")
    post_raw(api, fill(case.raw, world), status=201)
    [reply] = _one(db, "SELECT to_address, body_text FROM email_outbox WHERE kind = 'REPLY'")
    assert reply["to_address"] == "cleo@example.org"
    assert "a technician comes tomorrow at 10" in reply["body_text"]


def test_the_whole_text_is_kept_beside_the_trimmed_one(api, db, world):
    case = next(c for c in CASES if c.name == "gmail-reply-with-quoted-history")
    result = post_raw(api, fill(case.raw, world)).json
    [message] = _one(
        db, "SELECT body, full_body FROM ticket_messages WHERE id = %s", result["message_id"]
    )
    assert "we have received your request" in message["full_body"]
    assert message["body"] in message["full_body"]


# --- signatures, replays, duplicates ----------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Timestamp": str(int(time.time())), "X-Signature": "sha256=" + "0" * 64},
        "stale",
        "future",
        "other-body",
        "wrong-secret",
    ],
    ids=[
        "unsigned",
        "bad-signature",
        "stale",
        "from-the-future",
        "signed-for-another-body",
        "wrong-secret",
    ],
)
def test_unsigned_or_badly_signed_requests_are_401_and_change_nothing(api, db, headers):
    raw = next(c for c in CASES if c.name == "new-plain-text").raw
    if headers == "stale":
        headers = signed(raw, at=time.time() - 301)
    elif headers == "future":  # correctly signed, but dated past the window ahead
        headers = signed(raw, at=time.time() + 301)
    elif headers == "other-body":
        headers = signed(raw + b"tampered")
    elif headers == "wrong-secret":
        timestamp = int(time.time())
        headers = {
            "X-Timestamp": str(timestamp),
            "X-Signature": WebhookSignature("other", lambda: None).sign(timestamp, raw),
        }
    resp = post_raw(api, raw, status=401, headers=headers)
    assert resp.json["error"]["code"] == "unauthenticated"
    for table in ("tickets", "ticket_messages", "email_outbox"):
        assert _one(db, f"SELECT count(*) AS n FROM {table}") == [{"n": 0}], table


def test_a_large_badly_signed_body_is_refused_without_ever_being_held_whole(api, db):
    """Issue 18, finding 9: the HMAC is computed while the body streams to a spool (1 MiB
    in memory, disk beyond), so 20 MB with a wrong signature costs no 20 MB of memory."""
    raw = (
        b"From: Mallory <m@example.net>\r\nTo: support@example.com\r\nSubject: Big\r\n\r\n"
        + b"All work and no play makes Jack a dull boy.\r\n" * 450_000
    )
    assert len(raw) > 20_000_000
    headers = {"X-Timestamp": str(int(time.time())), "X-Signature": "sha256=" + "0" * 64}
    tracemalloc.start()
    try:
        resp = post_raw(api, raw, status=401, headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert resp.json["error"]["code"] == "unauthenticated"
    assert peak < len(raw) // 5, f"{peak:,} bytes held at once for a {len(raw):,}-byte body"
    assert _one(db, "SELECT count(*) AS n FROM tickets") == [{"n": 0}]


def test_a_large_well_signed_body_is_taken_whole(api, db):
    """The other side of the streamed check: a signed body far past the spool's 1 MiB in
    memory comes back from its disk part byte for byte (the file's hash)."""
    raw = next(c for c in CASES if c.name == "nine-mib-attachment").raw
    assert len(raw) > 10 * 2**20
    assert post_raw(api, raw, status=201).json["outcome"] == "created"
    [attachment] = _one(db, "SELECT filename, size_bytes, sha256 FROM attachments")
    assert attachment == {
        "filename": "spooler.log",
        "size_bytes": len(NINE_MIB),
        "sha256": hashlib.sha256(NINE_MIB).hexdigest(),
    }


def test_without_a_configured_secret_the_webhook_is_closed(settings, db, redis_client):
    api = webtest.TestApp(shared_app(settings, db))
    raw = next(c for c in CASES if c.name == "new-plain-text").raw
    resp = post_raw(api, raw, status=401)
    assert "INBOUND_EMAIL_SECRET" in resp.json["error"]["message"]


def test_the_same_message_twice_is_stored_once(api, db):
    raw = next(c for c in CASES if c.name == "new-plain-text").raw
    first = post_raw(api, raw, status=201).json
    again = post_raw(api, raw, status=200).json  # a replay inside the window, or a retry
    assert again == first | {"outcome": "duplicate", "acknowledged": False, "automatic": None}
    assert _one(db, "SELECT count(*) AS n FROM ticket_messages") == [{"n": 1}]
    assert _one(db, "SELECT count(*) AS n FROM email_outbox") == [{"n": 1}]


def test_a_message_without_a_message_id_is_recognised_and_never_named_in_our_mail(api, db):
    """Its id is made from its bytes (a retry is still a duplicate); our acknowledgement
    does not refer to that made-up id, which no mail client would know."""
    raw = (
        b"From: Cleo <cleo@example.org>\r\nTo: support@example.com\r\n"
        b"Subject: No id\r\n\r\nMy mail client sends no Message-ID.\r\n"
    )
    first = post_raw(api, raw, status=201).json
    assert post_raw(api, raw, status=200).json["message_id"] == first["message_id"]
    [ack] = _one(db, 'SELECT in_reply_to, "references" FROM email_outbox')
    assert ack["in_reply_to"] is None
    assert ack["references"] is None


def test_the_same_message_twice_at_once_is_stored_once(inbound_settings, db, redis_client):
    """Two posts in parallel (a provider retrying while the first is still running)."""
    raw = next(c for c in CASES if c.name == "pdf-attachment").raw
    app = shared_app(inbound_settings, db)
    results, barrier = [], threading.Barrier(2)

    def post() -> None:
        barrier.wait()
        results.append(post_raw(webtest.TestApp(app), raw, status="2*"))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_int for r in results) == [200, 201]
    assert results[0].json["message_id"] == results[1].json["message_id"]
    assert _one(db, "SELECT count(*) AS n FROM tickets") == [{"n": 1}]
    assert _one(db, "SELECT count(*) AS n FROM attachments") == [{"n": 1}]
    # The PID the loser took was given back: numbers stay gapless.
    assert _one(db, "SELECT last_value FROM pid_counters") == [{"last_value": 1}]


def test_a_database_error_is_a_5xx_so_the_provider_retries(api, db, conn):
    raw = next(c for c in CASES if c.name == "new-plain-text").raw
    conn.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'refused for this test'; END; $$"
    )
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON ticket_events "
        "FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    try:
        assert post_raw(api, raw, status=500).json["error"]["code"] == "internal_error"
    finally:
        conn.execute("DROP TRIGGER refuse ON ticket_events")
        conn.execute("DROP FUNCTION refuse()")
    assert _one(db, "SELECT count(*) AS n FROM ticket_messages") == [{"n": 0}]
    assert post_raw(api, raw, status=201).json["outcome"] == "created"  # the retry


# --- the JSON payload -----------------------------------------------------------------------


def test_a_json_payload_goes_through_the_same_service(api, db, world):
    created = post_json(
        api,
        {
            "from": "Gail <gail@example.org>",
            "to": "support@example.com",
            "subject": "Badge reader",
            "text": "The badge reader at door 3 is offline.",
            "message_id": "<json.1@example.org>",
            "attachments": [
                {
                    "filename": "door3.png",
                    "content_type": "image/png",
                    "content_base64": base64.b64encode(_png()).decode(),
                }
            ],
        },
        status=201,
    ).json
    assert created["outcome"] == "created"
    assert created["acknowledged"] is True
    threaded = post_json(
        api,
        {
            "from": "cleo@example.org",
            "to": "support@example.com",
            "subject": "Re: printer",
            "html": "<p>It is <b>fixed</b>.</p>",
            "message_id": "<json.2@example.org>",
            "in_reply_to": world["{ACK_ID}"],
            "headers": {"X-Mailer": "Provider"},
        },
        status=201,
    ).json
    assert (threaded["outcome"], threaded["ticket"]) == ("threaded", world["{PID}"])
    [message] = _one(db, "SELECT body FROM ticket_messages WHERE id = %s", threaded["message_id"])
    assert message["body"] == "It is fixed."
    automatic = post_json(
        api,
        {
            "from": "cleo@example.org",
            "to": "support@example.com",
            "subject": "OOO",
            "text": "Away.",
            "message_id": "<json.3@example.org>",
            "in_reply_to": world["{ACK_ID}"],
            "headers": {"Auto-Submitted": "auto-replied"},
        },
        status=201,
    ).json
    assert automatic["automatic"] == "Auto-Submitted: auto-replied"


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        # No usable sender is no reason to refuse (tests/api/test_quarantine.py).
        ({"to": "x"}, {"message_id"}),
        ({"from": "a@example.org", "message_id": "no brackets"}, {"message_id"}),
        (
            {
                "from": "a@example.org",
                "message_id": "<a@b>",
                "attachments": [{"filename": "a", "content_base64": "***"}],
            },
            {"attachments[0]"},
        ),
        ({"from": "a@example.org", "message_id": "<a@b>", "bcc": "x"}, {"bcc"}),
    ],
)
def test_a_bad_json_payload_is_a_422_naming_the_fields(api, payload, fields):
    resp = post_json(api, payload, status=422)
    assert set(resp.json["error"]["details"]) == fields


def test_acknowledgements_to_one_address_are_limited(api, db, inbound_settings):
    acks = []
    for n in range(inbound_settings.acks_per_address + 2):
        acks.append(
            post_json(
                api,
                {
                    "from": "flood@example.org",
                    "to": "support@example.com",
                    "subject": f"Question {n}",
                    "text": "Hello?",
                    "message_id": f"<flood.{n}@x.org>",
                },
                status=201,
            ).json["acknowledged"]
        )
    assert acks == [True] * inbound_settings.acks_per_address + [False, False]


def _png() -> bytes:
    from tests.api.test_attachments import PNG

    return PNG


# --- what a hostile sender tries (from a review) ------------------------------------------


def _replies_to_the_customer(db) -> list[dict]:
    return _one(db, "SELECT to_address FROM email_outbox WHERE kind = 'REPLY'")


def test_a_forged_staff_from_and_a_pid_do_not_make_a_staff_reply(api, db, world):
    """Anyone can write `From: ana@…` and `[#PID]`; a staff reply is emailed to the customer
    from our address, so it needs the signed token only a recipient of our email has."""
    raw = fill(
        msg("""
From: Ana Admin <ana@example.com>
To: support@example.com
Subject: Re: [#{PID}] The printer jams
Message-ID: <forged.1@evil.example>

Please pay the repair fee at http://evil.example/pay
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != world["{PID}"]
    assert _replies_to_the_customer(db) == []


def test_a_staff_reply_threads_by_the_token_in_our_message_id_alone(
    api, db, world, inbound_settings
):
    """The id it answers was never stored (a resend, a restored backup): the signed token
    in it still names the ticket, and proves the sender had our email."""
    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    our_id = services.composer.message_id(world["{PID}"], "ASSIGNMENT")
    raw = msg(f"""
From: Bo Agent <bo@example.com>
To: support@example.com
Subject: Re: the printer
In-Reply-To: {our_id}
Message-ID: <staff.token@example.com>

The technician comes at 10.
""")
    result = post_raw(api, raw, status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", world["{PID}"])
    assert _replies_to_the_customer(db) == [{"to_address": "cleo@example.org"}]


def test_a_staff_out_of_office_is_a_note_never_emailed_to_the_customer(api, db, world):
    raw = fill(
        msg("""
From: Bo Agent <bo@example.com>
To: support@example.com
Subject: Automatic reply: [#{PID}] Assigned to you: The printer jams
In-Reply-To: {NOTICE_ID}
Auto-Submitted: auto-replied
Message-ID: <ooo.bo.1@example.com>

I am out of the office until Monday.
"""),
        world,
    )
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "threaded"
    assert result["automatic"] is not None
    [message] = _one(
        db,
        "SELECT author::text, visibility::text FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )
    assert message == {"author": "STAFF", "visibility": "INTERNAL"}
    assert _replies_to_the_customer(db) == []


def test_a_staff_member_who_asked_for_help_replies_as_the_customer(api, db, world, make_staff):
    make_staff("AGENT", name="Dee Agent", email="dee@example.com")
    first = post_raw(
        api,
        msg("""
From: Dee <dee@example.com>
To: support@example.com
Subject: My laptop will not boot
Message-ID: <dee.1@example.com>

It shows a black screen.
"""),
        status=201,
    ).json
    again = post_raw(
        api,
        msg(f"""
From: Dee <dee@example.com>
To: support@example.com
Subject: Re: [#{first["ticket"]}] My laptop will not boot
In-Reply-To: <dee.1@example.com>
Message-ID: <dee.2@example.com>

Now it beeps too.
"""),
        status=201,
    ).json
    assert (again["outcome"], again["ticket"]) == ("threaded", first["ticket"])
    [message] = _one(
        db, "SELECT author::text FROM ticket_messages WHERE id = %s", again["message_id"]
    )
    assert message == {"author": "CUSTOMER"}


def test_a_ticket_closed_between_lookup_and_write_gets_a_follow_up(inbound_settings, db, world):
    """The ticket was found OPEN, then closed before the message was written."""
    from supportdesk.mail.inbound.parse import parse_mime
    from supportdesk.mail.inbound.service import Match

    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    stale = world["ticket"]
    with db.transaction() as conn:
        conn.execute("UPDATE tickets SET status = 'CLOSED' WHERE id = %s", (stale["id"],))
    email = parse_mime(
        fill(
            msg("""
From: Cleo Customer <cleo@example.org>
To: support@example.com
Subject: Re: [#{PID}] The printer jams
Message-ID: <cleo.late@example.org>

One more thing.
"""),
            world,
        )
    )
    received = services.inbound._receive(email, Match(stale))
    assert received.outcome == "created"
    [ticket] = _one(db, "SELECT follows_up_id FROM tickets WHERE pid = %s", received.ticket_pid)
    assert ticket["follows_up_id"] == stale["id"]


NUL_BODY = b"From: Eve <eve@example.org>\r\nTo: support@example.com\r\nSubject: nul\r\n"
LONG_FROM = '"a\\"' * 8000


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (NUL_BODY + b"Message-ID: <nul.1@x.example>\r\n\r\nbefore\x00after\r\n", 201),
        (NUL_BODY.replace(b"nul", b"=?utf-8?q?a=00b?=") + b"\r\nbody\r\n", 201),
        (
            NUL_BODY + b'Content-Type: text/plain; charset="utf\x008"\r\n\r\nbody\r\n',
            201,
        ),
        # No sender can be read from either: kept in the quarantine, never refused.
        (b"From: " + b"(" * 20000 + b"\r\nSubject: deep\r\n\r\nbody\r\n", 202),
        (f"From: {LONG_FROM}\r\nSubject: slow\r\n\r\nbody\r\n".encode(), 202),
        (
            NUL_BODY
            + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 101
            + b"--b--\r\n",
            400,
        ),
    ],
    ids=[
        "nul-in-body",
        "nul-in-encoded-subject",
        "nul-in-charset",
        "deep-parentheses",
        "quadratic-from",
        "too-many-parts",
    ],
)
def test_hostile_bytes_get_an_answer_never_a_500(api, db, raw, status):
    """NULs become U+FFFD (PostgreSQL refuses them), parsers that recurse or go quadratic
    are bounded; what can never be stored is a 4xx, so the provider stops retrying."""
    post_raw(api, raw, status=status)
    for row in _one(db, "SELECT body, subject FROM ticket_messages JOIN tickets t ON true"):
        assert "\x00" not in row["body"] + row["subject"]


@pytest.mark.parametrize(
    "payload",
    [
        {"text": "before\u0000after"},
        {"text": "lone \ud800 surrogate"},
        {"subject": "nul \u0000 subject"},
    ],
    ids=["nul", "surrogate", "nul-subject"],
)
def test_json_with_unstorable_characters_is_stored_with_replacements(api, db, payload):
    base = {"from": "eve@example.org", "to": "support@example.com", "message_id": "<j.1@x>"}
    post_json(api, base | {"subject": "s", "text": "t"} | payload, status=201)
    [row] = _one(db, "SELECT m.body, t.subject FROM ticket_messages m JOIN tickets t ON true")
    assert "\ufffd" in row["body"] + row["subject"]


def test_json_fields_of_the_wrong_type_are_a_422(api, db):
    payload = {
        "from": "eve@example.org",
        "message_id": "<j.2@x>",
        "text": 123,
        "subject": {"a": 1},
        "references": ["<a@b>", 5],
    }
    resp = post_json(api, payload, status=422)
    assert set(resp.json["error"]["details"]) >= {"text", "subject", "references"}
    assert _one(db, "SELECT count(*) AS n FROM tickets") == [{"n": 0}]


def test_every_part_is_kept_or_noted_never_dropped(api, db):
    raw = msg("""
From: Finn <finn@example.org>
To: support@example.com
Subject: Parts
Message-ID: <parts.1@example.org>
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain

See the parts.
--b
Content-Type: text/html
Content-Disposition: inline; filename="report.html"

<p>report</p>
--b
Content-Type: text/csv

a,b
1,2
--b
Content-Type: application/pdf
Content-Disposition: attachment; filename="empty.pdf"

--b--
""")
    result = post_raw(api, raw, status=201).json
    [message] = _one(db, "SELECT body FROM ticket_messages WHERE id = %s", result["message_id"])
    files = _one(db, "SELECT filename FROM attachments")
    assert files == [{"filename": "attachment.csv"}]
    assert "report.html" in message["body"]  # refused (HTML), and said so
    assert "empty.pdf was empty" in message["body"]


@pytest.fixture
def failing_tickets(database_url):
    """A test-only trigger: storing a ticket whose subject is 'Fail me' is a database error."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        conn.execute(
            "CREATE FUNCTION test_fail_ticket() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.subject = 'Fail me' THEN RAISE EXCEPTION 'test failure'; END IF; "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER test_fail_ticket BEFORE INSERT ON tickets "
            "FOR EACH ROW EXECUTE FUNCTION test_fail_ticket()"
        )
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("DROP TRIGGER test_fail_ticket ON tickets")
        conn.execute("DROP FUNCTION test_fail_ticket()")


def _ack_count(redis_client, address):
    from supportdesk.core.ratelimit import _digest

    return int(redis_client.get(f"sd:acks:{_digest(address)}") or 0)


def test_a_ticket_not_stored_gives_its_acknowledgement_back(
    api, client, redis_client, failing_tickets
):
    """The provider (or the customer) retries what failed: the retries must not use up the
    address's few acknowledgements a day."""
    raw = (
        b"From: Dora <dora@example.org>\r\nTo: support@example.com\r\nSubject: Fail me\r\n"
        b"Message-ID: <fail.1@example.org>\r\n\r\nPlease help.\r\n"
    )
    for _ in range(3):
        post_raw(api, raw, status="5*")
    assert _ack_count(redis_client, "dora@example.org") == 0
    form = {"name": "Dora", "email": "dora@example.org", "subject": "Fail me", "body": "Hi"}
    assert client.post_json("/api/tickets", form, expect_errors=True).status_int >= 500
    assert _ack_count(redis_client, "dora@example.org") == 0
    # What is stored still counts.
    client.post_json("/api/tickets", form | {"subject": "Works"}, status=201)
    assert _ack_count(redis_client, "dora@example.org") == 1


def test_mail_from_one_of_our_mailboxes_is_recorded_and_never_answered(api, db):
    """A company mailbox's address is ours like MAIL_FROM's (issue 20): mail from it, plus-
    addressed or not, is kept and never acknowledged, so two of our addresses cannot loop."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO mailboxes (address, imap_host, imap_port, username) "
            "VALUES ('help@company.example', 'imap.company.example', 993, 'help')"
        )
    for n, sender in enumerate(["help@company.example", "Help+x@Company.example"]):
        raw = (
            f"From: Help <{sender}>\r\nTo: support@example.com\r\nSubject: Loop {n}\r\n"
            f"Message-ID: <loop.{n}@company.example>\r\n\r\nWe received your request.\r\n"
        ).encode()
        result = post_raw(api, raw, status=201).json
        assert (result["acknowledged"], result["automatic"]) == (
            False,
            "sent from one of our mailboxes",
        )
