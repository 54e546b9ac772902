"""The people copied on a ticket (DESIGN.md section 11): recorded from inbound To and Cc,
threading like the requester, managed by staff, and Cc'd on replies.

Through the signed webhook and the API, on the real database; the delivery of the one
To+Cc email by the worker is in tests/worker/test_participant_delivery.py, the SMTP
listener's way in in tests/mail/test_smtp_participants.py.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from tests.conftest import shared_app
from tests.mail.corpus import msg
from tests.webhook import post_json, post_raw
from tests.webhook import rows as _rows

DANA = "dana@example.org"
ELI = "eli@example.net"


def _new_email(cc: str = f"Dana Doe <{DANA}>", to: str = "support@example.com", **headers) -> bytes:
    extra = "".join(f"{k.replace('_', '-')}: {v}\n" for k, v in headers.items())
    return msg(f"""
From: Fay Client <fay@example.org>
To: {to}
Cc: {cc}
Subject: The scanner is offline
Message-ID: <fay.1@example.org>
{extra}
Since this morning.
""")


def _participants(db, pid: str) -> list[tuple[str, str]]:
    found = _rows(
        db,
        "SELECT p.email, p.name FROM ticket_participants p JOIN tickets t ON t.id = p.ticket_id "
        "WHERE t.pid = %s ORDER BY p.added_at, p.email",
        pid,
    )
    return [(r["email"], r["name"]) for r in found]


def _events(db, pid: str, *types: str) -> list[dict]:
    return _rows(
        db,
        "SELECT e.type::text AS type, e.actor_id, e.data FROM ticket_events e "
        "JOIN tickets t ON t.id = e.ticket_id WHERE t.pid = %s AND e.type::text = ANY(%s) "
        "ORDER BY e.id",
        pid,
        list(types),
    )


def _ack_id(db, pid: str) -> str:
    [row] = _rows(
        db,
        "SELECT o.message_id FROM email_outbox o JOIN tickets t ON t.id = o.ticket_id "
        "WHERE t.pid = %s AND o.kind = 'ACKNOWLEDGEMENT'",
        pid,
    )
    return row["message_id"]


def _opened(api, raw: bytes) -> str:
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    return result["ticket"]


def _reply(sender: str, message_id: str, in_reply_to: str = "", subject: str = "Re: scanner"):
    header = f"In-Reply-To: {in_reply_to}\n" if in_reply_to else ""
    return msg(f"""
From: {sender}
To: support@example.com
Subject: {subject}
Message-ID: {message_id}
{header}
It is still offline.
""")


# --- recorded from inbound To and Cc --------------------------------------------------------


def test_the_cc_of_a_new_ticket_is_copied_on_it_with_events(api, db):
    pid = _opened(api, _new_email(cc=f"Dana Doe <{DANA}>, {ELI}"))
    assert _participants(db, pid) == [(DANA, "Dana Doe"), (ELI, "")]
    events = _events(db, pid, "PARTICIPANT_ADDED")
    assert [(e["actor_id"], e["data"]["email"]) for e in events] == [(None, DANA), (None, ELI)]


def test_the_other_addresses_in_to_are_copied_too(api, db):
    pid = _opened(api, _new_email(cc="", to=f"support@example.com, Eli <{ELI}>"))
    assert _participants(db, pid) == [(ELI, "Eli")]


def test_a_json_payloads_to_and_cc_are_read_alike(api, db):
    result = post_json(
        api,
        {
            "from": "Fay <fay@example.org>",
            "to": f"support@example.com, {ELI}",
            "cc": f"Dana Doe <{DANA}>",
            "subject": "Scanner",
            "text": "Offline.",
            "message_id": "<fay.json@example.org>",
        },
        status=201,
    ).json
    assert _participants(db, result["ticket"]) == [(DANA, "Dana Doe"), (ELI, "")]


def test_our_own_addresses_and_the_requester_are_never_copied(api, db):
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO mailboxes (address, imap_host, imap_port, username) "
            "VALUES ('help@company.example', 'imap.company.example', 993, 'help')"
        )
    ours = "Support <support@example.com>, support+abc.def@example.com, Help <Help@Company.example>"
    cc = f"{ours}, help+x@company.example, Fay <FAY@example.org>, {DANA}"
    pid = _opened(api, _new_email(cc=cc))
    assert _participants(db, pid) == [(DANA, "")]


def test_at_most_max_participants_are_copied(inbound_settings, db, redis_client):
    capped = inbound_settings.replace(max_participants=2)
    api = webtest.TestApp(shared_app(capped, db))
    cc = ", ".join(f"p{n}@example.net" for n in range(5))
    pid = _opened(api, _new_email(cc=cc))
    assert _participants(db, pid) == [("p0@example.net", ""), ("p1@example.net", "")]
    # A reply copying more adds nobody past the cap.
    reply = _reply("Fay <fay@example.org>", "<fay.2@example.org>", _ack_id(db, pid))
    reply = reply.replace(
        b"To: support@example.com", b"To: support@example.com\r\nCc: q@example.net"
    )
    assert post_raw(api, reply, status=201).json["outcome"] == "threaded"
    assert len(_participants(db, pid)) == 2


def test_machines_and_unverified_senders_copy_nobody(api, db):
    auto = _new_email(Auto_Submitted="auto-replied")
    assert _participants(db, _opened(api, auto)) == []
    unverified = post_json(
        api,
        {
            "from": "Fay <fay@example.org>",
            "cc": DANA,
            "subject": "Scanner",
            "text": "Offline.",
            "message_id": "<fay.fail@example.org>",
            "dmarc": "fail",
        },
        status=201,
    ).json
    assert _participants(db, unverified["ticket"]) == []


def test_the_requesters_reply_copies_the_people_it_adds(api, db):
    pid = _opened(api, _new_email(cc=DANA))
    reply = _reply("Fay <fay@example.org>", "<fay.2@example.org>", _ack_id(db, pid))
    reply = reply.replace(
        b"To: support@example.com", f"To: support@example.com\r\nCc: {ELI}".encode()
    )
    assert post_raw(api, reply, status=201).json["outcome"] == "threaded"
    assert _participants(db, pid) == [(DANA, ""), (ELI, "")]


def test_a_reply_tied_by_the_subject_alone_copies_nobody(api, db):
    """Anyone can write the requester's From and a [#PID]: were its Cc recorded, a forger
    would have every later reply Cc'd to them."""
    pid = _opened(api, _new_email(cc=""))
    raw = _reply("Fay <fay@example.org>", "<forged.cc@example.org>", subject=f"Re: [#{pid}]")
    raw = raw.replace(
        b"To: support@example.com", b"To: support@example.com\r\nCc: eve@evil.example"
    )
    result = post_raw(api, raw, status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", pid)
    assert _participants(db, pid) == []


# --- a participant's reply threads; nobody else's does --------------------------------------


def test_a_participants_reply_threads_like_the_requesters_and_reopens(api, db, bearer, make_staff):
    admin = make_staff("ADMIN", name="Ana Admin")
    pid = _opened(api, _new_email(cc=f"Dana Doe <{DANA}>"))
    api.patch_json(f"/api/tickets/{pid}", {"status": "RESOLVED"}, headers=bearer(admin))
    reply = _reply(f"Dana Doe <{DANA}>", "<dana.1@example.org>", _ack_id(db, pid))
    result = post_raw(api, reply, status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", pid)
    [message] = _rows(
        db,
        "SELECT author::text, author_email, visibility::text FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )
    assert message == {"author": "CUSTOMER", "author_email": DANA, "visibility": "PUBLIC"}
    ticket = api.get(f"/api/tickets/{pid}", headers=bearer(admin)).json["ticket"]
    assert ticket["status"] == "OPEN"
    thread = api.get(f"/api/tickets/{pid}/messages", headers=bearer(admin)).json["items"]
    assert (thread[-1]["author_name"], thread[-1]["author_email"]) == ("Dana Doe", DANA)
    timeline = api.get(f"/api/tickets/{pid}/events", headers=bearer(admin)).json["items"]
    assert f"{DANA}, copied on this ticket, wrote by email" in [e["summary"] for e in timeline]


def test_the_assignees_notice_names_the_participant_who_wrote(api, db, bearer, make_staff):
    admin = make_staff("ADMIN", name="Ana Admin")
    bo = make_staff("AGENT", name="Bo Agent", email="bo@example.com")
    pid = _opened(api, _new_email(cc=f"Dana Doe <{DANA}>"))
    api.post_json(f"/api/tickets/{pid}/assign", {"user_id": bo["id"]}, headers=bearer(admin))
    post_raw(api, _reply(f"Dana Doe <{DANA}>", "<dana.2@example.org>", _ack_id(db, pid)))
    [notice] = _rows(
        db,
        "SELECT subject, body_text FROM email_outbox WHERE kind = 'NOTICE' AND to_address = %s",
        "bo@example.com",
    )
    assert notice["subject"] == f"[#{pid}] Dana Doe replied: The scanner is offline"
    assert "Dana Doe replied on ticket" in notice["body_text"]
    assert "to answer Fay Client and everyone copied" in notice["body_text"]


@pytest.mark.parametrize("way", ["in-reply-to", "subject", "token-address"])
def test_a_strangers_forged_reply_opens_its_own_ticket(api, db, way):
    pid = _opened(api, _new_email(cc=DANA))
    if way == "in-reply-to":
        raw = _reply("Eve <eve@evil.example>", "<eve.1@evil.example>", _ack_id(db, pid))
    elif way == "subject":
        raw = _reply("Eve <eve@evil.example>", "<eve.1@evil.example>", subject=f"Re: [#{pid}]")
    else:
        [row] = _rows(db, "SELECT reply_to FROM email_outbox WHERE kind = 'ACKNOWLEDGEMENT'")
        raw = _reply("Eve <eve@evil.example>", "<eve.1@evil.example>")
        raw = raw.replace(b"To: support@example.com", f"To: {row['reply_to']}".encode())
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != pid
    assert _participants(db, pid) == [(DANA, "")]


def test_a_participant_failing_dmarc_never_threads(api, db):
    pid = _opened(api, _new_email(cc=DANA))
    result = post_json(
        api,
        {
            "from": f"Dana <{DANA}>",
            "subject": "Re: scanner",
            "text": "Pay here.",
            "message_id": "<dana.fail@example.org>",
            "in_reply_to": _ack_id(db, pid),
            "dmarc": "fail",
        },
        status=201,
    ).json
    assert result["outcome"] == "created"
    assert result["ticket"] != pid


def test_a_removed_participant_no_longer_threads(api, db, bearer, make_staff):
    admin = make_staff("ADMIN")
    pid = _opened(api, _new_email(cc=DANA))
    api.delete(f"/api/tickets/{pid}/participants/{DANA}", headers=bearer(admin), status=204)
    result = post_raw(api, _reply(DANA, "<dana.2@example.org>", _ack_id(db, pid)), status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != pid


# --- staff manage them --------------------------------------------------------------------


@pytest.fixture
def ticket(api, db):
    """Fay's ticket, copying Dana (from her email's Cc)."""
    return _opened(api, _new_email(cc=f"Dana Doe <{DANA}>"))


def test_staff_list_add_and_remove_participants(api, db, ticket, bearer, make_staff):
    admin = make_staff("ADMIN", name="Ana Admin")
    auth = bearer(admin)
    base = f"/api/tickets/{ticket}/participants"
    assert [p["email"] for p in api.get(base, headers=auth).json["items"]] == [DANA]
    added = api.post_json(base, {"email": "Eli@Example.net", "name": "Eli"}, headers=auth)
    assert added.status_int == 201
    assert added.json["participant"]["email"] == ELI
    assert added.json["participant"]["added_by"] == admin["id"]
    again = api.post_json(base, {"email": ELI}, headers=auth)
    assert (again.status_int, again.json["participant"]["name"]) == (200, "Eli")
    shown = api.get(f"/api/tickets/{ticket}", headers=auth).json
    assert [p["email"] for p in shown["participants"]] == [DANA, ELI]
    api.delete(f"{base}/{quote(DANA)}", headers=auth, status=204)
    api.delete(f"{base}/{DANA}", headers=auth, status=404)
    assert [p["email"] for p in api.get(base, headers=auth).json["items"]] == [ELI]
    events = _events(db, ticket, "PARTICIPANT_ADDED", "PARTICIPANT_REMOVED")
    assert [(e["type"], e["actor_id"], e["data"]["email"]) for e in events] == [
        ("PARTICIPANT_ADDED", None, DANA),
        ("PARTICIPANT_ADDED", admin["id"], ELI),
        ("PARTICIPANT_REMOVED", admin["id"], DANA),
    ]
    timeline = api.get(f"/api/tickets/{ticket}/events", headers=auth).json["items"]
    assert "Ana Admin copied eli@example.net" in [e["summary"] for e in timeline]


@pytest.mark.parametrize(
    ("email", "says"),
    [
        ("not an address", "valid email address"),
        ("fay@example.org", "requester"),
        ("support@example.com", "our own"),
        ("Support+x@example.com", "our own"),
    ],
)
def test_an_address_that_cannot_be_copied_is_a_422(api, ticket, bearer, make_staff, email, says):
    resp = api.post_json(
        f"/api/tickets/{ticket}/participants",
        {"email": email},
        headers=bearer(make_staff("ADMIN")),
        status=422,
    )
    assert says in resp.json["error"]["details"]["email"]


def test_copying_past_the_cap_is_a_422(inbound_settings, db, redis_client, bearer, make_staff):
    capped = inbound_settings.replace(max_participants=1)
    api = webtest.TestApp(shared_app(capped, db))
    pid = _opened(api, _new_email(cc=DANA))
    resp = api.post_json(
        f"/api/tickets/{pid}/participants",
        {"email": ELI},
        headers=bearer(make_staff("ADMIN")),
        status=422,
    )
    assert "at most 1" in resp.json["error"]["details"]["email"]
    assert _participants(db, pid) == [(DANA, "")]


def test_an_agent_reaches_the_participants_of_its_own_tickets_only(
    api, db, ticket, bearer, make_staff
):
    agent = make_staff("AGENT")
    base = f"/api/tickets/{ticket}/participants"
    api.get(base, headers=bearer(agent), status=404)
    api.post_json(base, {"email": ELI}, headers=bearer(agent), status=404)
    api.delete(f"{base}/{DANA}", headers=bearer(agent), status=404)
    assert _participants(db, ticket) == [(DANA, "Dana Doe")]


# --- a reply's cc, and the reply's email --------------------------------------------------


def _reply_rows(db) -> list[dict]:
    return _rows(
        db, "SELECT to_address, cc_addresses FROM email_outbox WHERE kind = 'REPLY' ORDER BY id"
    )


def test_a_public_reply_is_one_email_to_the_requester_cc_the_participants(
    api, db, ticket, bearer, make_staff
):
    auth = bearer(make_staff("ADMIN"))
    api.post_json(f"/api/tickets/{ticket}/messages", {"body": "On it."}, headers=auth)
    api.post_json(
        f"/api/tickets/{ticket}/messages",
        {"body": "Note.", "visibility": "INTERNAL"},
        headers=auth,
    )
    assert _reply_rows(db) == [{"to_address": "fay@example.org", "cc_addresses": [DANA]}]


def test_cc_on_a_reply_replaces_the_participants_from_then_on(api, db, ticket, bearer, make_staff):
    admin = make_staff("ADMIN")
    auth = bearer(admin)
    url = f"/api/tickets/{ticket}/messages"
    api.post_json(
        url, {"body": "Copying Eli instead.", "cc": [ELI, "Eli@example.net"]}, headers=auth
    )
    api.post_json(url, {"body": "And again."}, headers=auth)
    api.post_json(url, {"body": "Nobody now.", "cc": []}, headers=auth)
    assert [r["cc_addresses"] for r in _reply_rows(db)] == [[ELI], [ELI], []]
    events = _events(db, ticket, "PARTICIPANT_ADDED", "PARTICIPANT_REMOVED")
    assert [(e["type"], e["data"]["email"]) for e in events[1:]] == [
        ("PARTICIPANT_REMOVED", DANA),
        ("PARTICIPANT_ADDED", ELI),
        ("PARTICIPANT_REMOVED", ELI),
    ]
    assert all(e["actor_id"] == admin["id"] for e in events[1:])


def test_a_removed_participant_gets_no_more_replies(api, db, ticket, bearer, make_staff):
    auth = bearer(make_staff("ADMIN"))
    url = f"/api/tickets/{ticket}/messages"
    api.post_json(url, {"body": "First."}, headers=auth)
    api.delete(f"/api/tickets/{ticket}/participants/{DANA}", headers=auth, status=204)
    api.post_json(url, {"body": "Second."}, headers=auth)
    assert [r["cc_addresses"] for r in _reply_rows(db)] == [[DANA], []]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"body": "x", "visibility": "INTERNAL", "cc": [ELI]}, "internal note"),
        ({"body": "x", "cc": ["fay@example.org"]}, "requester"),
        ({"body": "x", "cc": ["support+t@example.com"]}, "our own"),
        ({"body": "x", "cc": ["nope"]}, "not a valid email address"),
        ({"body": "x", "cc": ELI}, "list of email addresses"),
    ],
)
def test_a_cc_that_cannot_be_is_a_422_and_nothing_is_saved(
    api, db, ticket, bearer, make_staff, body, says
):
    resp = api.post_json(
        f"/api/tickets/{ticket}/messages",
        body,
        headers=bearer(make_staff("ADMIN")),
        status=422,
    )
    assert says in resp.json["error"]["details"]["cc"]
    assert _reply_rows(db) == []
    assert _participants(db, ticket) == [(DANA, "Dana Doe")]


def test_a_cc_past_the_cap_is_a_422(inbound_settings, db, redis_client, bearer, make_staff):
    capped = inbound_settings.replace(max_participants=1)
    api = webtest.TestApp(shared_app(capped, db))
    pid = _opened(api, _new_email(cc=""))
    resp = api.post_json(
        f"/api/tickets/{pid}/messages",
        {"body": "x", "cc": [DANA, ELI]},
        headers=bearer(make_staff("ADMIN")),
        status=422,
    )
    assert "at most 1" in resp.json["error"]["details"]["cc"]


@pytest.mark.parametrize(
    "fields",
    [[("cc", f"{ELI}, gus@example.org")], [("cc", ELI), ("cc", "gus@example.org")]],
    ids=["comma-separated", "repeated"],
)
def test_a_multipart_reply_takes_cc_as_text(api, db, ticket, bearer, make_staff, fields):
    api.post(
        f"/api/tickets/{ticket}/messages",
        [("body", "With a file."), *fields],
        headers=bearer(make_staff("ADMIN")),
        upload_files=[("attachments", "notes.txt", b"hello\n", "text/plain")],
        status=201,
    )
    assert _reply_rows(db) == [
        {"to_address": "fay@example.org", "cc_addresses": [ELI, "gus@example.org"]}
    ]


def test_a_participant_removed_between_lookup_and_write_opens_its_own_ticket(
    inbound_settings, db, api
):
    """The reply was matched while Dana was copied; she was removed before it was stored:
    the check is made again under the ticket's lock, and the reply joins nothing."""
    from supportdesk.mail.inbound.parse import parse_mime
    from supportdesk.mail.inbound.service import Match
    from supportdesk.web.services import build_services

    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    pid = _opened(api, _new_email(cc=DANA))
    [ticket] = _rows(db, "SELECT * FROM tickets WHERE pid = %s", pid)
    with db.transaction() as conn:
        conn.execute("DELETE FROM ticket_participants WHERE ticket_id = %s", (ticket["id"],))
    email = parse_mime(_reply(DANA, "<dana.late@example.org>", _ack_id(db, pid)))
    received = services.inbound._receive(email, Match(ticket, participant=True))
    assert received.outcome == "created"
    assert received.ticket_pid != pid
    assert _rows(
        db, "SELECT count(*) AS n FROM ticket_messages WHERE ticket_id = %s", ticket["id"]
    ) == [{"n": 1}]
