"""Merging a duplicate ticket into another, and splitting a message off (DESIGN.md section
12; tickets/merging.py): what moves, the events, mail to the merged ticket landing in the
target, the refused chains and circles, access, and the race of A->B against B->A."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import webtest

from supportdesk.core.db import queries
from supportdesk.core.redis_client import make_redis
from supportdesk.files.storage import LocalStorage
from supportdesk.tickets.inputs import Assignment, NewMessage, NewTicket
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.factories import make_attachment, make_message, make_ticket
from tests.mail.corpus import msg
from tests.webhook import post_raw, rows


@pytest.fixture
def services(inbound_settings, db):
    return build_services(inbound_settings, db, make_redis(inbound_settings))


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin", email="ana@example.com")


def _open(services, email="cleo@example.org", name="Cleo Customer", subject="Printer jams"):
    """A ticket as the web form opens it: acknowledged, so its email has a Message-ID."""
    new = NewTicket(name, email, subject, f"{subject}: help.", "NORMAL")
    return services.tickets.create(new, channel="WEB")


def _merge(api, headers, source, target, status=200):
    return api.post_json(
        f"/api/tickets/{source['pid']}/merge", {"into": target["pid"]}, headers=headers,
        status=status,
    )  # fmt: skip


def _ticket(db, ticket_id):
    [row] = rows(db, "SELECT * FROM tickets WHERE id = %s", ticket_id)
    return row


def _events(db, ticket_id, *types):
    return rows(
        db,
        "SELECT type::text, actor_id, data FROM ticket_events WHERE ticket_id = %s "
        "AND type::text = ANY(%s) ORDER BY id",
        ticket_id,
        list(types),
    )


def _ack_id(db, ticket_id):
    [row] = rows(
        db,
        "SELECT message_id FROM email_outbox WHERE ticket_id = %s AND kind = 'ACKNOWLEDGEMENT'",
        ticket_id,
    )
    return row["message_id"]


# --- what a merge moves ------------------------------------------------------------------------


def test_a_merge_moves_messages_files_people_and_followers(
    api, db, services, admin, bearer, make_staff, inbound_settings
):
    target = _open(services, "cleo@example.org", "Cleo Customer", "Printer jams")
    source = _open(services, "dan@example.org", "Dan Other", "Printer still jams")
    follower = make_staff("AGENT", name="Fay Follower")
    with db.transaction() as conn:
        [first] = rows(db, "SELECT id FROM ticket_messages WHERE ticket_id = %s", source["id"])
        extra = make_message(conn, source["id"], author_email="dan@example.org", body="Logs.")
        make_attachment(conn, LocalStorage(inbound_settings.upload_dir), source["id"], extra["id"])
        for ticket, email, name in (
            (source, "eve@example.org", "Eve"),
            (source, "gus@example.org", "Gus"),
            (source, "cleo@example.org", "Cleo again"),  # the target's requester: skipped
            (target, "gus@example.org", "Gus"),  # already there: once
        ):
            queries.insert_participant(
                conn, ticket_id=ticket["id"], email=email, name=name, added_by=None,
                added_at=source["created_at"],
            )  # fmt: skip
        conn.execute(
            "INSERT INTO ticket_followers (ticket_id, user_id) VALUES (%s, %s)",
            (source["id"], follower["id"]),
        )
    outbox_before = rows(db, "SELECT id FROM email_outbox WHERE ticket_id = %s", source["id"])
    events_before = rows(db, "SELECT id FROM ticket_events WHERE ticket_id = %s", source["id"])

    merged = _merge(api, bearer(admin), source, target).json
    assert merged["ticket"]["pid"] == target["pid"]
    assert (merged["merged"]["pid"], merged["merged"]["status"]) == (source["pid"], "CLOSED")

    # Messages and files are the target's; the source keeps none.
    moved = rows(db, "SELECT ticket_id FROM ticket_messages WHERE id IN (%s, %s)", first["id"],
                 extra["id"])  # fmt: skip
    assert {m["ticket_id"] for m in moved} == {target["id"]}
    assert rows(db, "SELECT id FROM ticket_messages WHERE ticket_id = %s", source["id"]) == []
    files = rows(db, "SELECT ticket_id FROM attachments WHERE message_id = %s", extra["id"])
    assert files == [{"ticket_id": target["id"]}]
    thread = api.get(f"/api/tickets/{target['pid']}/messages", headers=bearer(admin)).json
    assert [m["body"] for m in thread["items"]] == [
        "Printer jams: help.",
        "Printer still jams: help.",
        "Logs.",
    ]
    # The file is served from the target now.
    file_id = thread["items"][2]["attachments"][0]["id"]
    api.get(f"/api/attachments/{file_id}", headers=bearer(admin), status=200)

    # People: the source's participants and its requester, without duplicates or the
    # target's requester; the source keeps none. Followers follow the target too.
    people = rows(
        db, "SELECT email FROM ticket_participants WHERE ticket_id = %s ORDER BY email",
        target["id"],
    )  # fmt: skip
    assert [p["email"] for p in people] == ["dan@example.org", "eve@example.org", "gus@example.org"]
    assert rows(db, "SELECT 1 FROM ticket_participants WHERE ticket_id = %s", source["id"]) == []
    followed = rows(db, "SELECT ticket_id FROM ticket_followers WHERE user_id = %s", follower["id"])
    assert {f["ticket_id"] for f in followed} == {source["id"], target["id"]}

    # The source: CLOSED, pointing at the target; history stays where it was written.
    row = _ticket(db, source["id"])
    assert (row["status"], row["merged_into_id"]) == ("CLOSED", target["id"])
    assert _ticket(db, target["id"])["merged_into_id"] is None
    assert rows(db, "SELECT id FROM email_outbox WHERE ticket_id = %s", source["id"]) == (
        outbox_before
    )
    after = rows(db, "SELECT id FROM ticket_events WHERE ticket_id = %s", source["id"])
    assert after[: len(events_before)] == events_before

    [into] = _events(db, source["id"], "MERGED_INTO")
    assert into["actor_id"] == admin["id"]
    assert into["data"] == {
        "into": {"pid": target["pid"], "subject": "Printer jams"},
        "status_from": "OPEN",
        "messages": 2,
        "files": 1,
        "participants_added": ["dan@example.org", "eve@example.org"],
    }
    [came] = _events(db, target["id"], "MERGED_FROM")
    assert came["data"]["from"] == {"pid": source["pid"], "subject": "Printer still jams"}
    assert came["data"]["messages"] == 2

    timeline = api.get(f"/api/tickets/{target['pid']}/events", headers=bearer(admin)).json
    assert timeline["items"][-1]["summary"] == (
        f"Ana Admin merged #{source['pid']} into this ticket (2 messages)"
    )
    timeline = api.get(f"/api/tickets/{source['pid']}/events", headers=bearer(admin)).json
    assert timeline["items"][-1]["summary"] == (
        f"Ana Admin merged this ticket into #{target['pid']} (2 messages)"
    )


def test_a_waiting_ticket_is_merged_closed_without_its_waiting_until(api, db, services, admin,
                                                                      bearer):  # fmt: skip
    target, source = _open(services), _open(services)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE tickets SET status = 'WAITING', waiting_until = now() + interval '1 day' "
            "WHERE id = %s",
            (source["id"],),
        )
    _merge(api, bearer(admin), source, target)
    row = _ticket(db, source["id"])
    assert (row["status"], row["waiting_until"]) == ("CLOSED", None)


# --- mail to the merged ticket -----------------------------------------------------------------


def _reply(refs: str, subject: str, sender="Cleo Customer <cleo@example.org>", n=1) -> bytes:
    return msg(f"""
Message-ID: <reply-{n}@mail.example.org>
{refs}Subject: {subject}
From: {sender}
To: Support Desk <support@example.com>
Content-Type: text/plain; charset="UTF-8"

It jams again, sorry.
""")


@pytest.mark.parametrize("way", ["in-reply-to", "pid-in-subject", "token"])
def test_a_customer_reply_to_the_merged_ticket_lands_in_the_target(
    api, db, services, admin, bearer, way
):
    target, source = _open(services), _open(services)
    ack = _ack_id(db, source["id"])
    _merge(api, bearer(admin), source, target)
    refs, subject = {
        "in-reply-to": (f"In-Reply-To: {ack}\nReferences: {ack}\n", "Re: the printer"),
        "pid-in-subject": ("", f"Re: [#{source['pid']}] the printer"),
        "token": ("To: " + services.composer.tokens.plus_address(
            "support@example.com", source["pid"], "CUSTOMER") + "\n", "Re: the printer"),
    }[way]  # fmt: skip
    result = post_raw(api, _reply(refs, subject)).json
    assert (result["outcome"], result["ticket"]) == ("threaded", target["pid"])
    [message] = rows(
        db, "SELECT ticket_id, matched_by_subject_only FROM ticket_messages WHERE id = %s",
        result["message_id"],
    )  # fmt: skip
    assert message["ticket_id"] == target["id"]
    # The [#PID] alone is kept and marked, as on any ticket (anyone can write a subject).
    assert message["matched_by_subject_only"] == (way == "pid-in-subject")


def test_mail_follows_a_chain_of_merges_to_its_end(api, db, services, admin, bearer):
    a, b, c = _open(services), _open(services), _open(services)
    ack = _ack_id(db, a["id"])
    _merge(api, bearer(admin), a, b)
    _merge(api, bearer(admin), b, c)
    result = post_raw(api, _reply(f"In-Reply-To: {ack}\n", "Re: the printer")).json
    assert (result["outcome"], result["ticket"]) == ("threaded", c["pid"])


def test_a_stranger_naming_the_merged_ticket_opens_a_ticket_of_their_own(
    api, db, services, admin, bearer
):
    target, source = _open(services), _open(services)
    _merge(api, bearer(admin), source, target)
    raw = _reply("", f"Re: [#{source['pid']}] hello", sender="Mallory <mal@example.net>")
    result = post_raw(api, raw).json
    assert result["outcome"] == "created"
    assert result["ticket"] not in (source["pid"], target["pid"])


# --- refused merges ----------------------------------------------------------------------------


def _refusal(resp) -> str:
    assert resp.json["error"]["code"] == "validation_error"
    return resp.json["error"]["details"]["into"]


def test_a_ticket_is_not_merged_into_itself(api, services, admin, bearer):
    a = _open(services)
    resp = _merge(api, bearer(admin), a, a, status=422)
    assert _refusal(resp) == "A ticket cannot be merged into itself."


def test_merging_back_the_other_way_would_make_a_circle(api, db, services, admin, bearer):
    a, b = _open(services), _open(services)
    _merge(api, bearer(admin), a, b)
    resp = _merge(api, bearer(admin), b, a, status=422)
    assert _refusal(resp) == (
        f"#{a['pid']} was merged into #{b['pid']}: merging #{b['pid']} into it would make a circle."
    )
    assert _ticket(db, b["id"])["merged_into_id"] is None


def test_nothing_merges_into_a_merged_ticket(api, db, services, admin, bearer):
    a, b, c = _open(services), _open(services), _open(services)
    _merge(api, bearer(admin), a, b)
    resp = _merge(api, bearer(admin), c, a, status=422)
    assert _refusal(resp) == f"#{a['pid']} is itself merged into #{b['pid']}: merge into that one."
    assert _ticket(db, c["id"])["merged_into_id"] is None


def test_a_merged_ticket_is_not_merged_again(api, db, services, admin, bearer):
    a, b, c = _open(services), _open(services), _open(services)
    _merge(api, bearer(admin), a, b)
    resp = _merge(api, bearer(admin), a, c, status=422)
    assert _refusal(resp) == f"#{a['pid']} is already merged into #{b['pid']}."
    assert _ticket(db, a["id"])["merged_into_id"] == b["id"]


@pytest.mark.parametrize(
    ("into", "message"),
    [("", "Give a ticket number such as 202612-00042."),
     ("not a pid", "Give a ticket number such as 202612-00042.")],
)  # fmt: skip
def test_a_merge_needs_a_ticket_number(api, services, admin, bearer, into, message):
    a = _open(services)
    resp = api.post_json(
        f"/api/tickets/{a['pid']}/merge", {"into": into}, headers=bearer(admin), status=422
    )
    assert _refusal(resp) == message


def test_a_merge_into_a_ticket_that_does_not_exist_is_404(api, services, admin, bearer):
    a = _open(services)
    resp = api.post_json(
        f"/api/tickets/{a['pid']}/merge", {"into": "209901-99999"}, headers=bearer(admin),
        status=404,
    )  # fmt: skip
    assert resp.json["error"]["code"] == "not_found"


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize("agents_see_unassigned", [False, True])
def test_an_agent_merges_only_tickets_it_can_see(
    settings, db, redis_client, make_staff, bearer, agents_see_unassigned
):
    current = settings.replace(agents_see_unassigned=agents_see_unassigned)
    api = webtest.TestApp(shared_app(current, db))
    me, colleague = make_staff("AGENT", name="Mia Me"), make_staff("AGENT", name="Cole League")
    with db.transaction() as conn:
        mine, mine2 = (make_ticket(conn, assigned_to=me["id"]) for _ in range(2))
        theirs = make_ticket(conn, assigned_to=colleague["id"])
        pile = make_ticket(conn)
        for ticket in (mine, mine2, theirs, pile):
            make_message(conn, ticket["id"])
    # A colleague's ticket is out of reach either way: as target and as source.
    _merge(api, bearer(me), mine, theirs, status=404)
    _merge(api, bearer(me), theirs, mine, status=404)
    # The unassigned pile is in reach with AGENTS_SEE_UNASSIGNED only.
    _merge(api, bearer(me), mine, pile, status=200 if agents_see_unassigned else 404)
    merged = rows(db, "SELECT id FROM tickets WHERE merged_into_id IS NOT NULL")
    assert merged == ([{"id": mine["id"]}] if agents_see_unassigned else [])
    if not agents_see_unassigned:
        _merge(api, bearer(me), mine2, mine, status=200)  # both its own


# --- the race ------------------------------------------------------------------------------------


def _waiting_for_the_lock(db_url: str, count: int) -> bool:
    with psycopg.connect(db_url, autocommit=True) as conn:
        [waiting] = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%FOR UPDATE%' AND datname = current_database()"
        ).fetchone()
    return waiting >= count


def test_two_merges_of_one_pair_either_way_one_wins_without_deadlock(
    api, db, database_url, services, admin, bearer, make_staff
):
    """A->B and B->A at once: each has read both tickets and waits for the first lock
    (held here) when it is let go; the winner merges, the other finds its target merged."""
    a, b = _open(services), _open(services)
    other = make_staff("SUB_ADMIN", name="Sid Sub")
    results: dict[str, webtest.TestResponse] = {}

    def merge(name, user, source, target):
        results[name] = api.post_json(
            f"/api/tickets/{source['pid']}/merge", {"into": target["pid"]},
            headers=bearer(user), expect_errors=True,
        )  # fmt: skip

    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT 1 FROM tickets WHERE id = %s FOR UPDATE", (a["id"],))
        racers = [
            threading.Thread(target=merge, args=("ab", admin, a, b)),
            threading.Thread(target=merge, args=("ba", other, b, a)),
        ]
        for thread in racers:
            thread.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_the_lock(database_url, 2):
            assert time.monotonic() < deadline, "the merges never reached the lock"
            time.sleep(0.02)
        blocker.rollback()
    for thread in racers:
        thread.join(10)
        assert not thread.is_alive(), "a merge is still waiting: a deadlock?"

    assert sorted(r.status_int for r in results.values()) == [200, 422]
    winner = next(name for name, r in results.items() if r.status_int == 200)
    loser = results["ba" if winner == "ab" else "ab"]
    assert "would make a circle" in loser.json["error"]["details"]["into"]
    source, target = (a, b) if winner == "ab" else (b, a)
    assert _ticket(db, source["id"])["merged_into_id"] == target["id"]
    assert _ticket(db, target["id"])["merged_into_id"] is None
    assert len(_events(db, source["id"], "MERGED_INTO")) == 1
    assert _events(db, target["id"], "MERGED_INTO") == []


# --- split -------------------------------------------------------------------------------------


@pytest.fixture
def conversation(db, services, admin, make_staff, inbound_settings):
    """Cleo's ticket (assigned to Bo): her message, Bo's reply and note, and a message of
    Gus, a participant, with a file."""
    bo = make_staff("AGENT", name="Bo Agent")
    ticket = _open(services)
    services.assignment.assign(admin, ticket["pid"], Assignment(bo["id"]))
    reply = services.messages.post(bo, ticket["pid"], NewMessage("Try this."), channel="API")
    note = services.messages.post(bo, ticket["pid"], NewMessage("Hm.", "INTERNAL"), channel="API")
    with db.transaction() as conn:
        queries.insert_participant(
            conn, ticket_id=ticket["id"], email="gus@example.org", name="Gus Guest",
            added_by=None, added_at=ticket["created_at"],
        )  # fmt: skip
        gus = make_message(
            conn, ticket["id"], author_email="gus@example.org", channel="EMAIL",
            body="Also, my scanner is broken.", email_message_id="<gus-1@example.org>",
        )  # fmt: skip
        make_attachment(conn, LocalStorage(inbound_settings.upload_dir), ticket["id"], gus["id"])
    return {"ticket": ticket, "bo": bo, "reply": reply.message, "note": note.message, "gus": gus}


def test_split_opens_a_ticket_from_a_customer_message(api, db, conversation, bearer):
    t, bo, gus = conversation["ticket"], conversation["bo"], conversation["gus"]
    outbox_before = rows(db, "SELECT id FROM email_outbox")
    resp = api.post(
        f"/api/tickets/{t['pid']}/messages/{gus['id']}/split", headers=bearer(bo), status=201
    ).json
    new = resp["ticket"]
    assert resp["source"]["pid"] == t["pid"]
    assert (new["status"], new["subject"], new["priority"]) == ("OPEN", t["subject"], "NORMAL")
    assert new["requester"] == {"email": "gus@example.org", "name": "Gus Guest"}
    assert new["assigned_to"]["id"] == bo["id"]  # whoever saw the source sees this one

    [row] = rows(db, "SELECT id, channel FROM tickets WHERE pid = %s", new["pid"])
    assert row["channel"] == "EMAIL"
    moved = rows(db, "SELECT ticket_id FROM ticket_messages WHERE id = %s", gus["id"])
    assert moved == [{"ticket_id": row["id"]}]
    assert rows(db, "SELECT ticket_id FROM attachments WHERE message_id = %s", gus["id"]) == [
        {"ticket_id": row["id"]}
    ]
    assert rows(db, "SELECT id FROM email_outbox") == outbox_before  # no acknowledgement

    source_events = api.get(f"/api/tickets/{t['pid']}/events", headers=bearer(bo)).json["items"]
    assert source_events[-1]["type"] == "SPLIT_TO"
    assert source_events[-1]["data"] == {
        "to": {"pid": new["pid"], "subject": t["subject"]},
        "message_id": gus["id"],
    }
    assert source_events[-1]["summary"] == (
        f"Bo Agent split a message off into the new ticket #{new['pid']}"
    )
    new_events = api.get(f"/api/tickets/{new['pid']}/events", headers=bearer(bo)).json["items"]
    assert [e["type"] for e in new_events] == ["CREATED", "SPLIT_FROM"]
    assert new_events[1]["summary"] == f"Bo Agent opened this ticket from a message of #{t['pid']}"

    # Mail answering the split message's email lands in the new ticket.
    result = post_raw(api, _reply("In-Reply-To: <gus-1@example.org>\n", "Re: scanner",
                                  sender="Gus Guest <gus@example.org>")).json  # fmt: skip
    assert (result["outcome"], result["ticket"]) == ("threaded", new["pid"])


@pytest.mark.parametrize("which", ["reply", "note"])
def test_a_staff_message_or_note_is_not_split(api, db, conversation, bearer, which):
    t, message = conversation["ticket"], conversation[which]
    resp = api.post(
        f"/api/tickets/{t['pid']}/messages/{message['id']}/split",
        headers=bearer(conversation["bo"]),
        status=422,
    )
    assert resp.json["error"]["details"] == {
        "message": "Only a customer's message can open a ticket of its own."
    }
    assert rows(db, "SELECT ticket_id FROM ticket_messages WHERE id = %s", message["id"]) == [
        {"ticket_id": t["id"]}
    ]


def test_a_message_of_another_ticket_is_404(api, db, services, conversation, admin, bearer):
    other = _open(services)
    resp = api.post(
        f"/api/tickets/{other['pid']}/messages/{conversation['gus']['id']}/split",
        headers=bearer(admin),
        status=404,
    )
    assert resp.json["error"]["code"] == "not_found"


def test_a_tickets_only_message_is_not_split(api, db, services, admin, bearer):
    alone = _open(services)
    [first] = rows(db, "SELECT id FROM ticket_messages WHERE ticket_id = %s", alone["id"])
    resp = api.post(
        f"/api/tickets/{alone['pid']}/messages/{first['id']}/split",
        headers=bearer(admin),
        status=422,
    )
    assert "only message" in resp.json["error"]["details"]["message"]


def test_an_agent_cannot_split_a_ticket_it_cannot_see(api, conversation, make_staff, bearer):
    t, gus = conversation["ticket"], conversation["gus"]
    stranger = make_staff("AGENT", name="Stan Ger")
    api.post(
        f"/api/tickets/{t['pid']}/messages/{gus['id']}/split",
        headers=bearer(stranger),
        status=404,
    )


def test_the_sources_other_requester_answers_into_the_target_as_a_participant(
    api, db, services, admin, bearer
):
    """Staff merged Dan's ticket into Cleo's: Dan became a participant of Cleo's ticket,
    and his answer to his own acknowledgement lands there."""
    target = _open(services, "cleo@example.org", "Cleo Customer")
    source = _open(services, "dan@example.org", "Dan Other")
    ack = _ack_id(db, source["id"])
    _merge(api, bearer(admin), source, target)
    raw = _reply(f"In-Reply-To: {ack}\n", "Re: the printer", sender="Dan Other <dan@example.org>")
    result = post_raw(api, raw).json
    assert (result["outcome"], result["ticket"]) == ("threaded", target["pid"])


def test_a_merged_ticket_takes_no_reply_note_or_status(api, db, services, admin, bearer):
    a, b = _open(services), _open(services)
    _merge(api, bearer(admin), a, b)
    headers = bearer(admin)
    for body in (
        {"body": "Hello", "visibility": "PUBLIC"},
        {"body": "FYI", "visibility": "INTERNAL"},
    ):
        resp = api.post_json(f"/api/tickets/{a['pid']}/messages", body, headers=headers, status=409)
        assert resp.json["error"]["message"] == (
            f"This ticket was merged into #{b['pid']}: write there instead."
        )
    api.patch_json(f"/api/tickets/{a['pid']}", {"status": "OPEN"}, headers=headers, status=409)
    assert _ticket(db, a["id"])["status"] == "CLOSED"
    with db.transaction() as conn:
        [[count]] = conn.execute(
            "SELECT count(*) FROM ticket_messages WHERE ticket_id = %s", (a["id"],)
        )
    assert count == 0  # its one message moved to the target with the merge
    api.post_json(
        f"/api/tickets/{b['pid']}/messages", {"body": "Here"}, headers=headers, status=201
    )
