"""Reading the audit log (DESIGN.md section 13): `GET /api/audit` and the Audit log page, for
ADMINs; filtered by actor, action and dates, newest first, paged by keyset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from supportdesk.accounts.audit import SYSTEM, Origin, record

DAY = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin", email="ana@example.com")


@pytest.fixture
def bo(make_staff):
    return make_staff("AGENT", name="Bo Agent", email="bo@example.com")


def write(db, action, actor=None, *, at=DAY, **fields) -> int:
    origin = Origin(actor["id"] if actor else None, "198.51.100.4", "req-1") if actor else SYSTEM
    with db.transaction() as conn:
        return record(conn, action, origin, now=at, **fields)


def listed(client, bearer, admin, query="") -> dict:
    return client.get(f"/api/audit?{query}", headers=bearer(admin)).json


def ids(page: dict) -> list[int]:
    return [item["id"] for item in page["items"]]


def test_an_entry_names_its_actor_target_and_origin(client, bearer, admin, bo, db):
    row_id = write(
        db, "ROLE_CHANGED", admin, target=("user", bo["id"]), data={"from": "AGENT", "to": "ADMIN"}
    )
    [entry] = listed(client, bearer, admin)["items"]
    assert entry == {
        "id": row_id,
        "at": DAY.isoformat(),
        "action": "ROLE_CHANGED",
        "label": "Role changed",
        "actor": {"id": admin["id"], "name": "Ana Admin", "email": "ana@example.com"},
        "subject": None,
        "target": {"type": "user", "id": str(bo["id"])},
        "client_ip": "198.51.100.4",
        "request_id": "req-1",
        "data": {"from": "AGENT", "to": "ADMIN"},
    }


def test_the_systems_entries_and_failed_logins_have_no_actor(client, bearer, admin, db):
    write(db, "LOGIN_FAILED", subject="who@example.com")
    [entry] = listed(client, bearer, admin)["items"]
    assert entry["actor"] is None
    assert entry["subject"] == "who@example.com"
    assert entry["target"] is None


def test_newest_first_by_time_then_id(client, bearer, admin, db):
    older = write(db, "LOGIN", admin, at=DAY - timedelta(hours=1))
    first, second = write(db, "LOGIN", admin), write(db, "LOGOUT", admin)
    # Written last but earlier in time (a clock behind): it is listed by its time.
    earliest = write(db, "LOGIN", admin, at=DAY - timedelta(days=1))
    assert ids(listed(client, bearer, admin)) == [second, first, older, earliest]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action=LOGIN", ["ana-login", "bo-login"]),
        ("action=login", ["ana-login", "bo-login"]),  # as case-insensitively as other choices
        ("action=LOGIN,USER_CREATED", ["system-created", "ana-login", "bo-login"]),
        ("actor={bo}", ["bo-logout", "bo-login"]),
        ("actor={bo}&action=LOGOUT", ["bo-logout"]),
        ("from=2026-11-20", ["bo-logout", "system-created", "ana-login"]),
        ("to=2026-11-19", ["bo-login"]),  # a date is its whole day
        ("from=2026-11-20T10:00:00Z", ["bo-logout", "system-created"]),
        ("from=2026-11-20T11:00:00%2B01:00", ["bo-logout", "system-created"]),  # = 10:00Z
        ("from=2026-11-20T10:00", ["bo-logout", "system-created"]),  # no offset: UTC
        ("to=2026-11-20T10:00:00Z", ["system-created", "ana-login", "bo-login"]),  # inclusive
        ("from=2026-11-20&to=2026-11-20", ["bo-logout", "system-created", "ana-login"]),
        ("actor=999999", []),
    ],
)
def test_filters(client, bearer, admin, bo, db, query, expected):
    rows = {
        "bo-login": write(db, "LOGIN", bo, at=DAY - timedelta(days=1)),
        "ana-login": write(db, "LOGIN", admin, at=DAY),
        "system-created": write(db, "USER_CREATED", at=DAY + timedelta(minutes=30)),
        "bo-logout": write(db, "LOGOUT", bo, at=DAY + timedelta(hours=2)),
    }
    page = listed(client, bearer, admin, query.format(bo=bo["id"]))
    assert ids(page) == [rows[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("action=NOT_AN_ACTION", "action"),
        ("action=LOGIN,,LOGOUT", "action"),
        ("action=LOGIN&action=LOGOUT", "action"),  # several: comma-separated, once
        ("actor=ana", "actor"),
        ("actor=0", "actor"),
        ("from=yesterday", "from"),
        ("from=2026-13-01", "from"),
        ("to=2026-11-31", "to"),
        ("from=2026-11-21&to=2026-11-20", "to"),
        ("from=2026-11-20T10:00Z&to=2026-11-20T09:00Z", "to"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),  # base64, but not of a position
        (
            "cursor=MjAyNi0xMS0yMFQwOTozMDowMCswMDowMC85OTk5OTk5OTk5OTk5OTk5OTk5OQ==",
            "cursor",
        ),  # an id past bigint
        ("to=9999-12-31", "to"),  # its whole day ends past the last date there is
        ("to=9999-12-31T23:59:59.999999", "to"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
    ],
)
def test_bad_filters_are_a_422_naming_the_field(client, bearer, admin, query, field):
    resp = client.get(f"/api/audit?{query}", headers=bearer(admin), status=422)
    assert resp.json["error"]["code"] == "validation_error"
    assert field in resp.json["error"]["details"]


def test_pages_follow_the_cursor_without_repeats_or_gaps(client, bearer, admin, db):
    written = [write(db, "LOGIN", admin, at=DAY + timedelta(seconds=n // 2)) for n in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        query = "per_page=3" + (f"&cursor={cursor}" if cursor else "")
        page = listed(client, bearer, admin, query)
        pages += 1
        seen += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(written, reverse=True)  # equal times: by id, never lost or repeated


def test_a_row_written_meanwhile_does_not_shift_the_next_page(client, bearer, admin, db):
    old = [write(db, "LOGIN", admin, at=DAY + timedelta(minutes=n)) for n in range(4)]
    first = listed(client, bearer, admin, "per_page=2")
    write(db, "LOGOUT", admin, at=DAY + timedelta(hours=1))  # newer than all: page one's
    second = listed(client, bearer, admin, f"per_page=2&cursor={first['next_cursor']}")
    assert ids(first) == [old[3], old[2]]
    assert ids(second) == [old[1], old[0]]
    assert second["next_cursor"] is None


def test_the_cursor_keeps_to_the_filters(client, bearer, admin, bo, db):
    mine = [write(db, "LOGIN", bo, at=DAY + timedelta(minutes=n)) for n in range(3)]
    for n in range(3):
        write(db, "LOGIN", admin, at=DAY + timedelta(minutes=n, seconds=30))
    first = listed(client, bearer, admin, f"actor={bo['id']}&per_page=2")
    rest = listed(
        client, bearer, admin, f"actor={bo['id']}&per_page=2&cursor={first['next_cursor']}"
    )
    assert ids(first) + ids(rest) == mine[::-1]


def test_sub_admins_and_agents_may_not_read_it(client, bearer, make_staff):
    for role in ("SUB_ADMIN", "AGENT"):
        resp = client.get("/api/audit", headers=bearer(make_staff(role)), status=403)
        assert resp.json["error"]["code"] == "forbidden"


def test_a_deep_page_reads_on_down_the_index_without_sorting(db, conn):
    """The log grows without bound: a page far down is found from its cursor in the index
    on (at, id), not by sorting or skipping the rows before it."""
    from supportdesk.core.db import queries

    conn.execute(
        "INSERT INTO audit_log (at, action) SELECT %s - n * interval '1 second', 'LOGIN' "
        "FROM generate_series(1, 20000) AS n",
        (DAY,),
    )
    conn.execute("ANALYZE audit_log")
    params = {
        "actor_id": None,
        "actions": None,
        "since": None,
        "before": None,
        "after_at": DAY - timedelta(hours=4),
        "after_id": 14400,
        "limit": 26,
    }
    plan = "\n".join(
        row[0] for row in conn.execute("EXPLAIN " + queries.audit_page.sql, params).fetchall()
    )
    assert "Index Scan using audit_log_at_idx" in plan
    assert "Index Cond: (ROW(at, id) < ROW(" in plan  # starts at the cursor: nothing skipped
    assert "Sort" not in plan
