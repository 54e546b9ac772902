"""Taking tickets (DESIGN.md section 12): with AGENTS_SEE_UNASSIGNED an AGENT reaches the
unassigned tickets besides its own, and takes one; a race between two takers gives one 200
and one 409. Without the setting, v1 holds (tests/api/test_agent_isolation.py)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import webtest

from tests.conftest import shared_app
from tests.factories import make_ticket
from tests.mail.corpus import msg
from tests.webhook import fill, post_raw
from tests.webhook import rows as _rows


@pytest.fixture
def shared(settings, db, redis_client) -> webtest.TestApp:
    """The app of a desk whose AGENTs see the unassigned pile."""
    on = settings.replace(agents_see_unassigned=True)
    return webtest.TestApp(shared_app(on, db))


@pytest.fixture
def pile(db, make_staff):
    """An AGENT's ticket, two unassigned ones, and a colleague's."""
    me, colleague = make_staff("AGENT", name="Mia Me"), make_staff("AGENT", name="Cole League")
    with db.transaction() as conn:
        tickets = {
            "mine": make_ticket(conn, assigned_to=me["id"]),
            "open1": make_ticket(conn),
            "open2": make_ticket(conn),
            "theirs": make_ticket(conn, assigned_to=colleague["id"]),
        }
    return me, colleague, tickets


def _events(db, ticket_id: int, type_: str = "ASSIGNED") -> list[dict]:
    return _rows(
        db,
        "SELECT actor_id, data FROM ticket_events WHERE ticket_id = %s AND type = %s ORDER BY id",
        ticket_id,
        type_,
    )


def _pids(resp) -> set[str]:
    return {t["pid"] for t in resp.json["items"]}


def test_an_agent_lists_its_own_and_the_unassigned_with_their_total(shared, pile, bearer):
    me, _, t = pile
    everything = shared.get("/api/tickets", headers=bearer(me)).json
    assert {i["pid"] for i in everything["items"]} == {
        t["mine"]["pid"],
        t["open1"]["pid"],
        t["open2"]["pid"],
    }
    assert everything["total"] == 3
    unassigned = shared.get("/api/tickets?assigned_to=none", headers=bearer(me)).json
    assert {i["pid"] for i in unassigned["items"]} == {t["open1"]["pid"], t["open2"]["pid"]}
    assert unassigned["total"] == 2
    assert _pids(shared.get("/api/tickets?assigned_to=me", headers=bearer(me))) == {
        t["mine"]["pid"]
    }
    # A colleague's ticket, asked for by its number, stays out of the list.
    by_pid = shared.get(f"/api/tickets?q={t['theirs']['pid']}", headers=bearer(me)).json
    assert (by_pid["items"], by_pid["total"]) == ([], 0)


def test_without_the_setting_an_agent_lists_only_its_own(client, pile, bearer):
    me, _, t = pile
    assert _pids(client.get("/api/tickets", headers=bearer(me))) == {t["mine"]["pid"]}
    assert client.get("/api/tickets?assigned_to=none", headers=bearer(me)).json["total"] == 0


def test_an_agent_reads_an_unassigned_ticket_but_not_a_colleagues(shared, pile, bearer):
    me, _, t = pile
    pid, theirs = t["open1"]["pid"], t["theirs"]["pid"]
    for path in ("", "/messages", "/events"):
        shared.get(f"/api/tickets/{pid}{path}", headers=bearer(me), status=200)
        shared.get(f"/api/tickets/{theirs}{path}", headers=bearer(me), status=404)


def test_an_agent_takes_an_unassigned_ticket(shared, db, pile, bearer):
    me, _, t = pile
    pid = t["open1"]["pid"]
    ticket = shared.post(f"/api/tickets/{pid}/take", headers=bearer(me), status=200).json
    assert ticket["ticket"]["assigned_to"] == {
        "id": me["id"],
        "name": me["name"],
        "email": me["email"],
    }
    [event] = _events(db, t["open1"]["id"])
    assert event["actor_id"] == me["id"]
    assert event["data"] == {"from": None, "to": {"id": me["id"], "name": me["name"]}}
    # Nobody is told what they just did themselves.
    assert _rows(db, "SELECT id FROM email_outbox WHERE kind = 'ASSIGNMENT'") == []
    timeline = shared.get(f"/api/tickets/{pid}/events", headers=bearer(me)).json["items"]
    assert timeline[-1]["type"] == "ASSIGNED"
    assert timeline[-1]["actor"] == {"id": me["id"], "name": me["name"]}


def test_taking_ones_own_ticket_changes_nothing(shared, db, pile, bearer):
    me, _, t = pile
    resp = shared.post(f"/api/tickets/{t['mine']['pid']}/take", headers=bearer(me), status=200)
    assert resp.json["ticket"]["assigned_to"]["id"] == me["id"]
    assert _events(db, t["mine"]["id"]) == []


def test_a_colleagues_ticket_cannot_be_taken_by_an_agent(shared, db, pile, bearer):
    me, colleague, t = pile
    resp = shared.post(f"/api/tickets/{t['theirs']['pid']}/take", headers=bearer(me), status=404)
    assert resp.json["error"]["code"] == "not_found"
    [row] = _rows(db, "SELECT assigned_to FROM tickets WHERE id = %s", t["theirs"]["id"])
    assert row["assigned_to"] == colleague["id"]


def test_without_the_setting_an_agent_cannot_take_the_unassigned(client, db, pile, bearer):
    me, _, t = pile
    client.post(f"/api/tickets/{t['open1']['pid']}/take", headers=bearer(me), status=404)
    assert _events(db, t["open1"]["id"]) == []


@pytest.mark.parametrize("role", ["ADMIN", "SUB_ADMIN"])
@pytest.mark.parametrize("agents_see_unassigned", [False, True])
def test_managers_take_any_ticket(
    settings, db, redis_client, pile, make_staff, bearer, role, agents_see_unassigned
):
    current = settings.replace(agents_see_unassigned=agents_see_unassigned)
    app = webtest.TestApp(shared_app(current, db))
    _, colleague, t = pile
    boss = make_staff(role, name="Bo Boss")
    for key, before in (("open1", None), ("theirs", colleague)):
        ticket = app.post(f"/api/tickets/{t[key]['pid']}/take", headers=bearer(boss)).json
        assert ticket["ticket"]["assigned_to"]["id"] == boss["id"]
        [event] = _events(db, t[key]["id"])
        moved_from = None if before is None else {"id": before["id"], "name": before["name"]}
        assert event["data"] == {"from": moved_from, "to": {"id": boss["id"], "name": "Bo Boss"}}


def _waiting_for_the_lock(db_url: str, count: int) -> bool:
    with psycopg.connect(db_url, autocommit=True) as conn:
        [waiting] = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%FOR UPDATE%' AND datname = current_database()"
        ).fetchone()
    return waiting >= count


@pytest.mark.parametrize("second", ["AGENT", "ADMIN"])
def test_two_takers_at_once_one_takes_it_the_other_gets_409(
    shared, db, database_url, pile, make_staff, bearer, second
):
    """Both takers are inside the window: each has seen the ticket unassigned and waits
    for its row lock (held here) when the lock is let go."""
    me, _, t = pile
    other = make_staff(second, name="Quick Draw")
    ticket = t["open1"]
    results: dict[str, webtest.TestResponse] = {}

    def take(name: str, user) -> None:
        results[name] = shared.post(
            f"/api/tickets/{ticket['pid']}/take", headers=bearer(user), expect_errors=True
        )

    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT 1 FROM tickets WHERE id = %s FOR UPDATE", (ticket["id"],))
        takers = [
            threading.Thread(target=take, args=("me", me)),
            threading.Thread(target=take, args=("other", other)),
        ]
        for thread in takers:
            thread.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_the_lock(database_url, 2):
            assert time.monotonic() < deadline, "the takers never reached the lock"
            time.sleep(0.02)
        blocker.rollback()
    for thread in takers:
        thread.join(10)

    statuses = sorted(r.status_int for r in results.values())
    assert statuses == [200, 409]
    winner = next(n for n, r in results.items() if r.status_int == 200)
    loser = results["other" if winner == "me" else "me"]
    winner_user = me if winner == "me" else other
    assert loser.json["error"]["code"] == "conflict"
    assert loser.json["error"]["message"] == f"{winner_user['name']} took this ticket first."
    [event] = _events(db, ticket["id"])
    assert event["actor_id"] == winner_user["id"]
    [row] = _rows(db, "SELECT assigned_to FROM tickets WHERE id = %s", ticket["id"])
    assert row["assigned_to"] == winner_user["id"]


def test_an_agent_takes_then_replies(shared, db, pile, bearer):
    me, _, t = pile
    pid = t["open1"]["pid"]
    shared.post(f"/api/tickets/{pid}/take", headers=bearer(me), status=200)
    shared.post_json(
        f"/api/tickets/{pid}/messages", {"body": "On it."}, headers=bearer(me), status=201
    )
    assert len(_events(db, t["open1"]["id"])) == 1  # taken once; the reply took nothing more
    emails = _rows(db, "SELECT to_address FROM email_outbox WHERE kind = 'REPLY'")
    assert emails == [{"to_address": t["open1"]["requester_email"]}]


def test_an_agents_reply_to_an_untaken_ticket_takes_it_and_a_note_does_not(
    shared, db, pile, bearer
):
    me, _, t = pile
    note, reply = t["open1"], t["open2"]
    shared.post_json(
        f"/api/tickets/{note['pid']}/messages",
        {"body": "Looks like a duplicate.", "visibility": "INTERNAL"},
        headers=bearer(me),
        status=201,
    )
    assert _events(db, note["id"]) == []
    posted = shared.post_json(
        f"/api/tickets/{reply['pid']}/messages", {"body": "Hello!"}, headers=bearer(me)
    ).json
    assert posted["ticket"]["assigned_to"]["id"] == me["id"]
    [event] = _events(db, reply["id"])
    assert event["actor_id"] == me["id"]


def test_an_agent_triages_an_untaken_ticket_without_taking_it(shared, db, pile, bearer):
    me, _, t = pile
    changed = shared.patch_json(
        f"/api/tickets/{t['open1']['pid']}", {"priority": "URGENT"}, headers=bearer(me)
    ).json["ticket"]
    assert (changed["priority"], changed["assigned_to"]) == ("URGENT", None)


def test_a_manager_reply_leaves_an_unassigned_ticket_unassigned(
    shared, db, pile, make_staff, bearer
):
    """v1, for ADMIN and SUB_ADMIN: answering does not take."""
    _, _, t = pile
    posted = shared.post_json(
        f"/api/tickets/{t['open1']['pid']}/messages",
        {"body": "Hello!"},
        headers=bearer(make_staff("ADMIN")),
    ).json
    assert posted["ticket"]["assigned_to"] is None


# --- staff who answer by email follow the same rule ---------------------------------------

STAFF_REPLY = """
From: Bo Agent <bo@example.com>
To: support@example.com
Subject: Re: [#{PID}] Assigned to you: The printer jams
In-Reply-To: {NOTICE_ID}
Message-ID: <bo.reply.1@example.com>

The technician comes at 10.
"""


@pytest.mark.parametrize("agents_see_unassigned", [False, True])
def test_an_agent_answering_an_unassigned_ticket_by_email(
    inbound_settings, db, redis_client, world, agents_see_unassigned
):
    """Bo's notice was for a ticket since unassigned: with the setting he may still answer
    it (and answering takes it); without it he is a stranger there, and his email opens a
    ticket of its own."""
    current = inbound_settings.replace(agents_see_unassigned=agents_see_unassigned)
    api = webtest.TestApp(shared_app(current, db))
    with db.transaction() as conn:
        conn.execute(
            "UPDATE tickets SET assigned_to = NULL WHERE id = %s", (world["ticket"]["id"],)
        )
    result = post_raw(api, fill(msg(STAFF_REPLY), world), status=201).json
    [row] = _rows(db, "SELECT assigned_to FROM tickets WHERE id = %s", world["ticket"]["id"])
    if agents_see_unassigned:
        assert (result["outcome"], result["ticket"]) == ("threaded", world["{PID}"])
        assert row["assigned_to"] == world["bo"]["id"]
    else:
        assert result["outcome"] == "created"
        assert result["ticket"] != world["{PID}"]
        assert row["assigned_to"] is None
