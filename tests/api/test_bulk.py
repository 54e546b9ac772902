"""Bulk actions (issue 22 part 7, DESIGN.md section 12): per-ticket results, per-ticket
access, one event per change, none for a change to the same value."""

from __future__ import annotations

import psycopg
import pytest
import webtest

from tests.conftest import shared_app
from tests.factories import make_ticket
from tests.webhook import rows


@pytest.fixture
def api(settings, db, redis_client) -> webtest.TestApp:
    return webtest.TestApp(shared_app(settings, db))


@pytest.fixture
def desk(db, make_staff, bearer):
    ana = make_staff("ADMIN", email="ana@example.com", name="Ana")
    bo = make_staff("AGENT", email="bo@example.com", name="Bo")
    cy = make_staff("AGENT", email="cy@example.com", name="Cy")
    with db.transaction() as conn:
        mine = [make_ticket(conn, assigned_to=bo["id"]) for _ in range(2)]
        other = make_ticket(conn, assigned_to=cy["id"], subject="Cy's secret subject")
    return {"ana": ana, "bo": bo, "cy": cy, "mine": mine, "other": other, "as": bearer}


def _events(db, kind: str | None = None) -> list[dict]:
    sql = (
        "SELECT e.type::text AS type, t.pid, e.data "
        "FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id"
    )
    if kind:
        return rows(db, sql + " WHERE e.type = %s ORDER BY e.id", kind)
    return rows(db, sql + " ORDER BY e.id")


def _bulk(api, headers, status=200, **body):
    return api.post_json("/api/tickets/bulk", body, headers=headers, status=status)


def test_a_forbidden_ticket_in_the_middle_is_not_found_and_left_alone(api, db, desk):
    first, last = desk["mine"]
    pids = [first["pid"], desk["other"]["pid"], last["pid"]]
    resp = _bulk(api, desk["as"](desk["bo"]), pids=pids, action="status", value="RESOLVED")
    results = resp.json["results"]
    assert [(r["pid"], r["outcome"]) for r in results] == [
        (first["pid"], "changed"),
        (desk["other"]["pid"], "not_found"),
        (last["pid"], "changed"),
    ]
    # Nothing about the other's ticket: exactly what a ticket that does not exist gets.
    assert results[1] == {"pid": desk["other"]["pid"], "outcome": "not_found"}
    assert "secret" not in resp.text
    assert results[0]["ticket"]["status"] == "RESOLVED"
    statuses = {r["pid"]: r["status"] for r in rows(db, "SELECT pid, status::text FROM tickets")}
    assert statuses == {
        first["pid"]: "RESOLVED",
        desk["other"]["pid"]: "OPEN",
        last["pid"]: "RESOLVED",
    }
    assert [e["pid"] for e in _events(db, "STATUS_CHANGED")] == [first["pid"], last["pid"]]


def test_a_ticket_that_does_not_exist_reads_like_a_forbidden_one(api, desk):
    resp = _bulk(
        api, desk["as"](desk["bo"]), pids=["202001-99999"], action="priority", value="HIGH"
    )
    assert resp.json == {"results": [{"pid": "202001-99999", "outcome": "not_found"}]}


def test_one_event_per_change_and_none_for_the_same_value(api, db, desk):
    with db.transaction() as conn:
        urgent = make_ticket(conn, priority="URGENT")
        normal = make_ticket(conn, priority="NORMAL")
    admin = desk["as"](desk["ana"])
    resp = _bulk(api, admin, pids=[urgent["pid"], normal["pid"]], action="priority", value="urgent")
    assert [r["outcome"] for r in resp.json["results"]] == ["unchanged", "changed"]
    events = _events(db, "PRIORITY_CHANGED")
    assert [(e["pid"], e["data"]) for e in events] == [
        (normal["pid"], {"from": "NORMAL", "to": "URGENT"})
    ]
    # Again: all unchanged, nothing written.
    resp = _bulk(api, admin, pids=[urgent["pid"], normal["pid"]], action="priority", value="URGENT")
    assert [r["outcome"] for r in resp.json["results"]] == ["unchanged", "unchanged"]
    assert len(_events(db, "PRIORITY_CHANGED")) == 1


def test_bulk_assign_writes_the_single_routes_events_and_notices(api, db, desk):
    first, second = desk["mine"]
    resp = _bulk(
        api,
        desk["as"](desk["ana"]),
        pids=[first["pid"], second["pid"], desk["other"]["pid"]],
        action="assign",
        value=desk["cy"]["id"],
    )
    assert [r["outcome"] for r in resp.json["results"]] == ["changed", "changed", "unchanged"]
    assigned = _events(db, "ASSIGNED")
    assert [e["pid"] for e in assigned] == [first["pid"], second["pid"]]
    assert assigned[0]["data"]["to"] == {"id": desk["cy"]["id"], "name": "Cy"}
    notices = rows(db, "SELECT to_address FROM email_outbox WHERE kind = 'ASSIGNMENT'")
    assert [n["to_address"] for n in notices] == ["cy@example.com"] * 2
    resp = _bulk(api, desk["as"](desk["ana"]), pids=[first["pid"]], action="assign", value=None)
    assert resp.json["results"][0]["outcome"] == "changed"
    assert resp.json["results"][0]["ticket"]["assigned_to"] is None
    assert [e["pid"] for e in _events(db, "UNASSIGNED")] == [first["pid"]]


def test_an_agents_bulk_assign_is_refused_whole(api, db, desk):
    resp = _bulk(
        api,
        desk["as"](desk["bo"]),
        status=403,
        pids=[desk["mine"][0]["pid"]],
        action="assign",
        value=desk["bo"]["id"],
    )
    assert resp.json["error"]["code"] == "forbidden"
    assert _events(db, "ASSIGNED") == []


def test_an_inactive_assignee_is_a_422_before_any_ticket(api, db, desk, make_staff):
    gone = make_staff("AGENT", is_active=False)
    resp = _bulk(
        api,
        desk["as"](desk["ana"]),
        status=422,
        pids=[desk["mine"][0]["pid"]],
        action="assign",
        value=gone["id"],
    )
    assert "value" in resp.json["error"]["details"]
    assert _events(db, "ASSIGNED") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pids": [], "action": "status", "value": "OPEN"}, "pids"),
        (
            {"pids": [f"202001-{n:05}" for n in range(101)], "action": "status", "value": "OPEN"},
            "pids",
        ),
        ({"pids": ["202001-00001", "202001-00001"], "action": "status", "value": "OPEN"}, "pids"),
        ({"pids": ["not-a-pid"], "action": "status", "value": "OPEN"}, "pids"),
        ({"pids": "202001-00001", "action": "status", "value": "OPEN"}, "pids"),
        ({"pids": ["202001-00001"], "action": "delete", "value": None}, "action"),
        ({"pids": ["202001-00001"], "value": "OPEN"}, "action"),
        ({"pids": ["202001-00001"], "action": "status", "value": "GONE"}, "value"),
        ({"pids": ["202001-00001"], "action": "priority", "value": "OPEN"}, "value"),
        ({"pids": ["202001-00001"], "action": "assign", "value": "bo"}, "value"),
        ({"pids": ["202001-00001"], "action": "spam", "value": "yes"}, "value"),
        ({"pids": ["202001-00001"], "action": "status", "value": "OPEN", "x": 1}, "x"),
    ],
)
def test_a_bad_body_is_a_422_naming_the_field(api, desk, body, field):
    resp = api.post_json("/api/tickets/bulk", body, headers=desk["as"](desk["ana"]), status=422)
    assert field in resp.json["error"]["details"]


def test_a_hundred_tickets_at_once(api, db, desk):
    with db.transaction() as conn:
        pids = [make_ticket(conn)["pid"] for _ in range(100)]
    resp = _bulk(api, desk["as"](desk["ana"]), pids=pids, action="status", value="CLOSED")
    assert [r["outcome"] for r in resp.json["results"]] == ["changed"] * 100
    assert len(_events(db, "STATUS_CHANGED")) == 100


@pytest.fixture
def refused_status_change(database_url):
    """refused_status_change(ticket_id): from now on the database refuses any change of that
    ticket's status (a trigger, made and dropped as the schema's owner): a database error on
    one ticket of a bulk action, whatever the application checks first."""
    made: list[bool] = []

    def refuse(ticket_id: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as owner:
            owner.execute(
                "CREATE FUNCTION test_refuse_status() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN IF NEW.id = {int(ticket_id)} AND NEW.status <> OLD.status THEN "
                "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
            )
            owner.execute(
                "CREATE TRIGGER test_refuse_status BEFORE UPDATE ON tickets "
                "FOR EACH ROW EXECUTE FUNCTION test_refuse_status()"
            )
        made.append(True)

    yield refuse
    if made:
        with psycopg.connect(database_url, autocommit=True) as owner:
            owner.execute("DROP TRIGGER test_refuse_status ON tickets")
            owner.execute("DROP FUNCTION test_refuse_status()")


def test_a_ticket_that_fails_rolls_back_alone(api, db, desk, refused_status_change):
    """A database error on one ticket (here: its status change refused by a trigger) is
    `failed`; the tickets before and after it are changed and committed."""
    first, last = desk["mine"]
    with db.transaction() as conn:
        stuck = make_ticket(conn, status="WAITING", assigned_to=desk["bo"]["id"])
    refused_status_change(stuck["id"])
    pids = [first["pid"], stuck["pid"], last["pid"]]
    resp = _bulk(api, desk["as"](desk["bo"]), pids=pids, action="status", value="OPEN")
    outcomes = [(r["outcome"], r.get("error")) for r in resp.json["results"]]
    assert outcomes == [
        ("unchanged", None),
        ("failed", "Not changed; try again."),
        ("unchanged", None),
    ]
    resp = _bulk(api, desk["as"](desk["bo"]), pids=pids, action="priority", value="LOW")
    assert [r["outcome"] for r in resp.json["results"]] == ["changed"] * 3
    resp = _bulk(api, desk["as"](desk["bo"]), pids=pids, action="status", value="RESOLVED")
    assert [r["outcome"] for r in resp.json["results"]] == ["changed", "failed", "changed"]
    statuses = {r["pid"]: r["status"] for r in rows(db, "SELECT pid, status::text FROM tickets")}
    assert [statuses[p] for p in pids] == ["RESOLVED", "WAITING", "RESOLVED"]
    assert [e["pid"] for e in _events(db, "STATUS_CHANGED")] == [first["pid"], last["pid"]]
