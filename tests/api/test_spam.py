"""Spam and blocked senders (issue 22 part 8, DESIGN.md sections 6 and 12): marking a ticket
as spam closes it and blocks its sender; mail from a blocked address or domain goes to the
quarantine, never to a ticket nor an acknowledgement; unblocking lets it in again."""

from __future__ import annotations

import uuid

import pytest

from tests.factories import make_ticket
from tests.webhook import post_json, post_raw, rows


@pytest.fixture
def ana(make_staff):
    return make_staff("ADMIN", email="ana@example.com", name="Ana")


@pytest.fixture
def admin(ana, bearer):
    return bearer(ana)


def _mail(sender: str, subject: str = "Cheap pills") -> dict:
    return {
        "from": f"Sender <{sender}>",
        "to": "support@example.com",
        "subject": subject,
        "text": "Buy now.",
        "message_id": f"<{uuid.uuid4().hex}@mail.example.org>",
    }


def _raw(sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: support@example.com\r\nSubject: Cheap pills\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@mail.example.org>\r\n\r\nBuy now.\r\n"
    ).encode()


def _count(db, table: str) -> int:
    return rows(db, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def _block(api, admin, pattern: str, status=201):
    return api.post_json("/api/blocked-senders", {"pattern": pattern}, headers=admin, status=status)


# --- marking as spam ---------------------------------------------------------------------------


def test_marking_spam_closes_blocks_the_address_and_mails_nobody(api, db, ana, admin):
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_email="Spammer@Example.NET", status="WAITING")
    resp = api.post(f"/api/tickets/{ticket['pid']}/spam", headers=admin, status=200)
    assert resp.json["changed"] is True
    assert resp.json["ticket"]["status"] == "CLOSED"
    [blocked] = rows(db, "SELECT pattern, created_by FROM blocked_senders")
    assert blocked == {"pattern": "spammer@example.net", "created_by": ana["id"]}
    [event] = rows(db, "SELECT type::text, actor_id, data FROM ticket_events")
    assert event == {
        "type": "SPAM",
        "actor_id": ana["id"],
        "data": {
            "from": "WAITING",
            "to": "CLOSED",
            "blocked": "spammer@example.net",
            "blocked_by": None,
        },
    }
    assert _count(db, "email_outbox") == 0
    # Again: nothing more is written.
    resp = api.post(f"/api/tickets/{ticket['pid']}/spam", headers=admin, status=200)
    assert resp.json["changed"] is False
    assert _count(db, "ticket_events") == 1
    events = api.get(f"/api/tickets/{ticket['pid']}/events", headers=admin).json["items"]
    assert events[-1]["summary"] == "Ana marked this as spam (blocked: spammer@example.net)"


def test_an_agent_cannot_mark_a_ticket_it_may_not_see(api, db, make_staff, bearer):
    bo = make_staff("AGENT")
    with db.transaction() as conn:
        ticket = make_ticket(conn)
    api.post(f"/api/tickets/{ticket['pid']}/spam", headers=bearer(bo), status=404)
    assert _count(db, "blocked_senders") == 0
    assert rows(db, "SELECT status::text FROM tickets") == [{"status": "OPEN"}]


def test_bulk_spam_blocks_each_sender_once(api, db, admin):
    with db.transaction() as conn:
        pids = [
            make_ticket(conn, requester_email=email)["pid"]
            for email in ("eve@spam.example", "EVE@spam.example", "mallory@spam.example")
        ]
    resp = api.post_json(
        "/api/tickets/bulk", {"pids": pids, "action": "spam"}, headers=admin, status=200
    )
    assert [r["outcome"] for r in resp.json["results"]] == ["changed"] * 3
    patterns = [r["pattern"] for r in rows(db, "SELECT pattern FROM blocked_senders ORDER BY id")]
    assert patterns == ["eve@spam.example", "mallory@spam.example"]
    events = rows(db, "SELECT data FROM ticket_events WHERE type = 'SPAM' ORDER BY id")
    assert [(e["data"]["blocked"], e["data"]["blocked_by"]) for e in events] == [
        ("eve@spam.example", None),
        (None, "eve@spam.example"),
        ("mallory@spam.example", None),
    ]
    assert _count(db, "email_outbox") == 0
    again = api.post_json(
        "/api/tickets/bulk", {"pids": pids, "action": "spam", "value": None}, headers=admin
    )
    assert [r["outcome"] for r in again.json["results"]] == ["unchanged"] * 3


# --- the blocked senders -----------------------------------------------------------------------


def test_an_admin_lists_adds_and_removes_blocked_senders(api, admin, ana):
    added = _block(api, admin, "  @Spam.Example ").json["blocked_sender"]
    assert added["pattern"] == "@spam.example"
    assert added["created_by"] == {"id": ana["id"], "name": "Ana"}
    duplicate = _block(api, admin, "@spam.example", status=409)
    assert duplicate.json["error"]["details"]["id"] == added["id"]
    listed = api.get("/api/blocked-senders", headers=admin).json["items"]
    assert [b["pattern"] for b in listed] == ["@spam.example"]
    api.delete(f"/api/blocked-senders/{added['id']}", headers=admin, status=204)
    api.delete(f"/api/blocked-senders/{added['id']}", headers=admin, status=404)
    assert api.get("/api/blocked-senders", headers=admin).json["items"] == []


@pytest.mark.parametrize(
    "pattern",
    ["", "spam", "@", "@localhost", "a@b@c.example", "@spam .example", "x" * 250 + "@a.example", 5],
)
def test_a_pattern_that_is_neither_an_address_nor_a_domain_is_a_422(api, admin, pattern):
    resp = _block(api, admin, pattern, status=422)
    assert "pattern" in resp.json["error"]["details"]


@pytest.mark.parametrize(
    ("pattern", "who"),
    [
        ("ana@example.com", "Ana <ana@example.com>"),  # a staff member, exactly
        ("@example.com", "Ana <ana@example.com>"),  # their domain
        ("@example.net", "Help <help@help.example.net>"),  # a parent of a mailbox's domain
        ("@help.example.net", "Help <help@help.example.net>"),  # one of our mailboxes
    ],
)
def test_our_own_people_and_mailboxes_are_never_blocked(api, db, admin, pattern, who):
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO mailboxes (address, display_name, imap_host, imap_port, username)"
            " VALUES ('help@help.example.net', 'Help', 'imap.example.net', 993, 'help')"
        )
    resp = _block(api, admin, pattern, status=422)
    assert resp.json["error"]["details"]["pattern"].startswith(f"This would block our own {who}")
    assert _count(db, "blocked_senders") == 0
    _block(api, admin, "eve@example.com")  # a narrower address is fine


def test_marking_a_staff_members_ticket_as_spam_blocks_nobody(api, db, ana, admin):
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_email="ANA@example.com")
    resp = api.post(f"/api/tickets/{ticket['pid']}/spam", headers=admin, status=200)
    assert resp.json["ticket"]["status"] == "CLOSED"
    assert _count(db, "blocked_senders") == 0
    [event] = rows(db, "SELECT data FROM ticket_events WHERE type = 'SPAM'")
    assert event["data"]["blocked"] is None


def test_only_an_admin_manages_blocked_senders(api, make_staff, bearer):
    for role in ("SUB_ADMIN", "AGENT"):
        headers = bearer(make_staff(role))
        api.get("/api/blocked-senders", headers=headers, status=403)
        api.post_json(
            "/api/blocked-senders", {"pattern": "@x.example"}, headers=headers, status=403
        )


# --- mail from a blocked sender ------------------------------------------------------------------


BLOCKED = [
    ("spammer@spam.example", "spammer@spam.example"),
    ("SPAMMER@Spam.Example", "spammer@spam.example"),
    ("anyone@spam.example", "@spam.example"),
    ("anyone@mail.spam.example", "@spam.example"),
]


@pytest.mark.parametrize(("sender", "pattern"), BLOCKED)
@pytest.mark.parametrize("form", ["json", "raw"])
def test_mail_from_a_blocked_address_or_domain_is_quarantined(
    api, db, admin, sender, pattern, form
):
    _block(api, admin, pattern)
    if form == "json":
        resp = post_json(api, _mail(sender), status=202)
    else:
        resp = post_raw(api, _raw(sender), status=202)
    assert resp.json["outcome"] == "quarantined"
    assert resp.json["ticket"] is None
    [kept] = rows(db, "SELECT reason FROM quarantine")
    assert kept["reason"] == f"blocked sender ({pattern})"
    assert _count(db, "tickets") == 0
    assert _count(db, "email_outbox") == 0


@pytest.mark.parametrize("sender", ["someone@notspam.example", "someone@spam.example.org"])
def test_a_domain_blocks_only_itself_and_its_subdomains(api, db, admin, sender):
    _block(api, admin, "@spam.example")
    resp = post_json(api, _mail(sender), status=201)
    assert resp.json["outcome"] == "created"
    assert _count(db, "quarantine") == 0


def test_a_reply_from_a_blocked_requester_never_reaches_their_ticket(api, db, admin):
    with db.transaction() as conn:
        ticket = make_ticket(conn, requester_email="cleo@example.org")
    _block(api, admin, "cleo@example.org")
    resp = post_json(api, _mail("cleo@example.org", f"Re: [#{ticket['pid']}] Help"), status=202)
    assert resp.json["outcome"] == "quarantined"
    assert _count(db, "ticket_messages") == 0


def test_unblocking_lets_mail_in_again(api, db, admin):
    blocked = _block(api, admin, "@spam.example").json["blocked_sender"]
    post_json(api, _mail("eve@spam.example"), status=202)
    api.delete(f"/api/blocked-senders/{blocked['id']}", headers=admin, status=204)
    resp = post_json(api, _mail("eve@spam.example"), status=201)
    assert resp.json["outcome"] == "created"
    assert resp.json["acknowledged"] is True
    assert _count(db, "tickets") == 1


def test_an_admin_may_still_open_a_ticket_from_a_blocked_senders_email(api, db, admin):
    """The ADMIN vouches for the sender: the quarantine's own action is not blocked."""
    _block(api, admin, "eve@spam.example")
    post_json(api, _mail("eve@spam.example"), status=202)
    [kept] = rows(db, "SELECT id FROM quarantine")
    resp = api.post_json(
        f"/api/quarantine/{kept['id']}/ticket",
        {"requester_email": "eve@spam.example"},
        headers=admin,
        status=201,
    )
    assert resp.json["outcome"] == "created"
    assert _count(db, "quarantine") == 0


# --- the public form from a blocked address ----------------------------------------------------


def _form(email: str) -> dict:
    return {"name": "Eve", "email": email, "subject": "Cheap pills", "body": "Buy now."}


def test_the_public_api_from_a_blocked_address_opens_nothing_and_says_nothing(api, db, admin):
    _block(api, admin, "@spam.example")
    resp = api.post_json("/api/tickets", _form("eve@spam.example"), status=202)
    assert resp.json == {"ticket": None}
    [kept] = rows(db, "SELECT id, reason, from_header FROM quarantine")
    assert kept["reason"] == "blocked sender (@spam.example), by the web form"
    assert kept["from_header"] == "Eve <eve@spam.example>"
    assert _count(db, "tickets") == 0
    assert _count(db, "email_outbox") == 0
    # An ADMIN who knows better opens it as a ticket, with what was typed.
    opened = api.post_json(
        f"/api/quarantine/{kept['id']}/ticket",
        {"requester_email": "eve@spam.example"},
        headers=admin,
        status=201,
    )
    [ticket] = rows(
        db,
        "SELECT t.pid, t.subject, m.body FROM tickets t "
        "JOIN ticket_messages m ON m.ticket_id = t.id",
    )
    assert ticket == {"pid": opened.json["ticket"], "subject": "Cheap pills", "body": "Buy now."}


def test_the_public_page_from_a_blocked_address_thanks_without_a_number(api, db, admin):
    _block(api, admin, "eve@spam.example")
    page = api.get("/", headers={"Accept": "text/html"})
    form = next(f for f in page.forms.values() if f.action == "/")
    for field, value in _form("Eve@Spam.Example").items():
        form[field] = value
    thanks = form.submit(status=303).follow()
    assert "Thank you: we have your request." in thanks.text
    assert "ticket number" not in thanks.text
    assert _count(db, "tickets") == 0
    assert _count(db, "email_outbox") == 0
    assert _count(db, "quarantine") == 1
