"""POST and GET /api/tickets/{pid}/messages: replies, internal notes, the collision guard."""

from __future__ import annotations

import pytest

from supportdesk.mail.outbound.outbox import EMAIL_QUEUE
from tests.factories import make_message, make_ticket


@pytest.fixture
def ticket(db):
    with db.transaction() as conn:
        return make_ticket(conn, requester_email="cleo@example.org", requester_name="Cleo")


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin", email="ana@example.com")


def _post(client, bearer, user, pid, body, status=201):
    return client.post_json(
        f"/api/tickets/{pid}/messages", body, headers=bearer(user), status=status
    )


def _events(db, ticket_id):
    with db.transaction() as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT type::text, actor_id, data FROM ticket_events WHERE ticket_id = %s "
                "ORDER BY id",
                (ticket_id,),
            )
        ]


def _outbox(db):
    with db.transaction() as conn:
        return conn.execute(
            "SELECT kind::text, to_address, subject, ticket_message_id, in_reply_to, status::text "
            "FROM email_outbox ORDER BY id"
        ).fetchall()


def test_a_reply_is_saved_emailed_and_moves_an_open_ticket_in_progress(
    client, bearer, admin, ticket, db, redis_client
):
    resp = _post(client, bearer, admin, ticket["pid"], {"body": "We are on it.\nHang on."})
    body = resp.json
    message = body["message"]
    assert message["body"] == "We are on it.\nHang on."
    assert message["author"] == "STAFF"
    assert message["author_name"] == "Ana Admin"
    assert message["visibility"] == "PUBLIC"
    assert message["channel"] == "API"
    assert message["attachments"] == []
    assert body["ticket"]["status"] == "IN_PROGRESS"
    assert body["newer_messages"] == 0
    assert resp.headers["Location"].endswith(f"/api/tickets/{ticket['pid']}/messages")

    [(kind, to, subject, message_id, in_reply_to, status)] = _outbox(db)
    assert (kind, to, status) == ("REPLY", "cleo@example.org", "PENDING")
    assert subject == f"[#{ticket['pid']}] Re: {ticket['subject']}"
    assert message_id == message["id"]
    assert in_reply_to is None  # no earlier email in this (factory-made) thread
    assert redis_client.lrange(EMAIL_QUEUE, 0, -1) == [b"1"]
    events = _events(db, ticket["id"])
    assert [(e[0], e[1]) for e in events] == [
        ("MESSAGE_ADDED", admin["id"]),
        ("STATUS_CHANGED", admin["id"]),
    ]
    assert events[0][2] == {"message_id": message["id"], "visibility": "PUBLIC"}
    assert events[1][2] == {"from": "OPEN", "to": "IN_PROGRESS"}


def test_an_internal_note_is_never_emailed_and_changes_no_status(
    client, bearer, admin, ticket, db, redis_client
):
    body = _post(
        client,
        bearer,
        admin,
        ticket["pid"],
        {"body": "Customer is on the old plan.", "visibility": "internal"},
    ).json
    assert body["message"]["visibility"] == "INTERNAL"
    assert body["ticket"]["status"] == "OPEN"
    assert _outbox(db) == []
    assert redis_client.llen(EMAIL_QUEUE) == 0
    assert [e[0] for e in _events(db, ticket["id"])] == ["NOTE_ADDED"]


@pytest.mark.parametrize(
    ("visibility", "status", "events"),
    [
        ("PUBLIC", "WAITING", ["MESSAGE_ADDED", "STATUS_CHANGED"]),
        ("PUBLIC", "RESOLVED", ["MESSAGE_ADDED", "STATUS_CHANGED"]),
        ("PUBLIC", "OPEN", ["MESSAGE_ADDED"]),  # asked to stay OPEN: no change, no event
        ("INTERNAL", "RESOLVED", ["NOTE_ADDED", "STATUS_CHANGED"]),
    ],
)
def test_reply_and_set_a_status_in_one_request(
    client, bearer, admin, ticket, db, visibility, status, events
):
    body = _post(
        client,
        bearer,
        admin,
        ticket["pid"],
        {"body": "Done.", "visibility": visibility, "status": status},
    ).json
    assert body["ticket"]["status"] == status
    recorded = _events(db, ticket["id"])
    assert [e[0] for e in recorded] == events
    if "STATUS_CHANGED" in events:
        assert recorded[-1][2] == {"from": "OPEN", "to": status}


def test_a_reply_on_a_ticket_already_in_progress_keeps_its_status(client, bearer, admin, db):
    with db.transaction() as conn:
        ticket = make_ticket(conn, status="WAITING")
    body = _post(client, bearer, admin, ticket["pid"], {"body": "Any news?"}).json
    assert body["ticket"]["status"] == "WAITING"
    assert [e[0] for e in _events(db, ticket["id"])] == ["MESSAGE_ADDED"]


def test_the_collision_guard_counts_what_arrived_since_and_saves_anyway(
    client, bearer, admin, ticket, db
):
    with db.transaction() as conn:
        seen = make_message(conn, ticket["id"], body="First")
        make_message(conn, ticket["id"], body="Customer wrote again")
        make_message(conn, ticket["id"], body="And again")
    body = _post(
        client,
        bearer,
        admin,
        ticket["pid"],
        {"body": "Answering the first.", "last_seen_message_id": seen["id"]},
    ).json
    assert body["newer_messages"] == 2
    thread = client.get(f"/api/tickets/{ticket['pid']}/messages", headers=bearer(admin)).json
    assert thread["items"][-1]["body"] == "Answering the first."
    # Up to date: nothing newer.
    latest = thread["items"][-1]["id"]
    again = _post(
        client, bearer, admin, ticket["pid"], {"body": "More.", "last_seen_message_id": latest}
    ).json
    assert again["newer_messages"] == 0


def test_the_thread_is_oldest_first_with_who_wrote_what(client, bearer, admin, ticket, db):
    with db.transaction() as conn:
        make_message(conn, ticket["id"], body="Help!", author_email="cleo@example.org")
    _post(client, bearer, admin, ticket["pid"], {"body": "Hello Cleo."})
    _post(client, bearer, admin, ticket["pid"], {"body": "Note", "visibility": "INTERNAL"})
    items = client.get(f"/api/tickets/{ticket['pid']}/messages", headers=bearer(admin)).json[
        "items"
    ]
    assert [(m["author"], m["author_name"], m["visibility"], m["body"]) for m in items] == [
        ("CUSTOMER", "Cleo", "PUBLIC", "Help!"),
        ("STAFF", "Ana Admin", "PUBLIC", "Hello Cleo."),
        ("STAFF", "Ana Admin", "INTERNAL", "Note"),
    ]
    assert items[0]["author_email"] == "cleo@example.org"
    assert all(m["attachments"] == [] for m in items)


def test_an_agent_posts_only_on_its_own_tickets(client, bearer, make_staff, db):
    mine, other = make_staff("AGENT"), make_staff("AGENT")
    with db.transaction() as conn:
        ticket = make_ticket(conn, assigned_to=mine["id"])
    _post(client, bearer, mine, ticket["pid"], {"body": "On it."})
    for method in ("post", "get"):
        if method == "post":
            resp = _post(client, bearer, other, ticket["pid"], {"body": "Me too"}, status=404)
        else:
            resp = client.get(
                f"/api/tickets/{ticket['pid']}/messages", headers=bearer(other), status=404
            )
        assert resp.json["error"]["code"] == "not_found"
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ticket_messages").fetchone() == (1,)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body"}),
        ({"body": "   "}, {"body"}),
        ({"body": "x" * 50_001}, {"body"}),
        ({"body": "a\x00b"}, {"body"}),
        ({"body": "Hi", "visibility": "SECRET"}, {"visibility"}),
        ({"body": "Hi", "status": "DONE"}, {"status"}),
        ({"body": "Hi", "last_seen_message_id": "7"}, {"last_seen_message_id"}),
        ({"body": "Hi", "last_seen_message_id": True}, {"last_seen_message_id"}),
        ({"body": "Hi", "cc": "x@example.org"}, {"cc"}),
        ({"body": 5, "visibility": 1}, {"body", "visibility"}),
    ],
)
def test_bad_messages_are_a_422_naming_each_field(client, bearer, admin, ticket, db, body, fields):
    resp = _post(client, bearer, admin, ticket["pid"], body, status=422)
    assert set(resp.json["error"]["details"]) == fields
    assert _outbox(db) == []


def test_unknown_ticket_is_404(client, bearer, admin):
    _post(client, bearer, admin, "202611-99999", {"body": "Hi"}, status=404)
    _post(client, bearer, admin, "not-a-pid", {"body": "Hi"}, status=404)


def test_the_timeline_tells_replies_notes_and_emails_in_sentences(client, bearer, admin, ticket):
    from supportdesk.tickets.timeline import describe_event

    _post(client, bearer, admin, ticket["pid"], {"body": "Hello."})
    _post(client, bearer, admin, ticket["pid"], {"body": "Hm.", "visibility": "INTERNAL"})
    events = client.get(f"/api/tickets/{ticket['pid']}/events", headers=bearer(admin)).json
    assert [e["summary"] for e in events["items"]] == [
        "Ana Admin replied to the customer",
        "Status: Open → In progress",
        "Ana Admin added an internal note",
    ]
    sent = {
        "type": "EMAIL_SENT",
        "actor_id": None,
        "data": {"kind": "REPLY", "to": "cleo@example.org"},
    }
    failed = {
        "type": "EMAIL_FAILED",
        "actor_id": None,
        "data": {"kind": "ACKNOWLEDGEMENT", "to": "x@example.org", "error": "550 no"},
    }
    assert describe_event(sent) == "Reply emailed to cleo@example.org"
    assert describe_event(failed) == (
        "Acknowledgement to x@example.org could not be delivered: 550 no"
    )
