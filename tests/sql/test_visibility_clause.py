"""Every query that filters tickets by viewer writes the one visibility rule of
supportdesk/tickets/access.py, whole: a query that took the viewer's id but forgot the
unassigned tickets (or took `viewer_sees_all` and nothing else) would quietly disagree with
the others."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from supportdesk.core.db import SQL_DIR, parse_query_file, queries
from supportdesk.tickets.access import VISIBLE_TO_VIEWER, may_see, visibility, with_reach
from supportdesk.tickets.search import NO_SEARCH, Search
from supportdesk.tickets.service import list_query
from tests.factories import make_ticket, make_user

RULE_PARAMS = frozenset(visibility({"id": 1, "role": "AGENT"}))


def _flat(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).replace("( ", "(").replace(" )", ")")


def _viewer_queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted(SQL_DIR.glob("*.sql")):
        text = path.read_text()
        blocks = re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]
        for block in blocks:
            name = re.match(r"[a-z_]+", block).group(0)
            if ":viewer_" in block:
                found.append((name, block))
    return found


def test_the_rule_has_the_parameters_visibility_gives():
    assert {"viewer_sees_all", "viewer_sees_unassigned", "viewer_id"} == RULE_PARAMS
    assert set(re.findall(r":(\w+)", VISIBLE_TO_VIEWER)) == RULE_PARAMS


def test_every_query_by_viewer_writes_the_whole_rule():
    viewer_queries = _viewer_queries()
    assert {name for name, _ in viewer_queries} >= {
        "visible_ticket",
        "lock_visible_ticket",
        "list_tickets",
        "list_tickets_text",
        "requester_other_tickets",
        "visible_attachment",
    }
    for name, block in viewer_queries:
        assert _flat(VISIBLE_TO_VIEWER) in _flat(block), name
        assert getattr(queries, name).params >= RULE_PARAMS, name


def test_the_check_finds_a_query_that_forgets_the_unassigned_tickets(tmp_path):
    forgetful = (
        "-- name: forgetful^\n-- A query with the v1 rule.\n"
        "SELECT * FROM tickets t WHERE (:viewer_sees_all OR t.assigned_to = :viewer_id);\n"
    )
    [query] = parse_query_file(forgetful, "forgetful.sql")
    assert _flat(VISIBLE_TO_VIEWER) not in _flat(forgetful)
    assert not query.params >= RULE_PARAMS


# --- the list counts what the rule reaches, whichever way it counts -----------------------


def _list(conn, viewer, cap: int, **filters):
    search = Search.of(filters.pop("q", None), datetime.now(UTC))
    params = (
        visibility(viewer)
        | {"status": None, "priority": None, "unassigned": False, "assignee_id": None}
        | {"requester": None}
        | filters
        | (search.params() if search else NO_SEARCH)
    )
    return list_query(search)(conn, limit=100, offset=0, cap=cap, **params)


@pytest.mark.parametrize("reach", [False, True], ids=["v1", "agents see unassigned"])
@pytest.mark.parametrize("cap", [2, 3, 100])
@pytest.mark.parametrize(
    "filters", [{}, {"status": "OPEN"}, {"q": "printer"}], ids=["all", "status", "text"]
)
def test_the_list_pages_and_counts_what_the_rule_reaches(db, reach, cap, filters):
    """The page and its `matching` (capped at cap + 1) against the rule itself, for an
    AGENT with two tickets and three in the pile, others' tickets around them: an AGENT
    that sees the pile counts it apart from its own (list_tickets), and a cap below either
    part, or the sum, must still count to cap + 1 and no further."""
    with db.transaction() as conn:
        me, other = (
            make_user(conn, role="AGENT", email=f"{n}@example.com")["id"] for n in ("me", "ot")
        )
        for owner, status in [(me, "OPEN"), (me, "WAITING"), (None, "OPEN"), (None, "OPEN"),
                              (None, "CLOSED"), (other, "OPEN"), (other, "CLOSED")]:  # fmt: skip
            make_ticket(conn, assigned_to=owner, status=status)
        viewer = with_reach({"id": me, "role": "AGENT"}, agents_see_unassigned=reach)
        rows = _list(conn, viewer, cap, **dict(filters))
        every = conn.execute("SELECT * FROM tickets").fetchall()
        cols = [c.name for c in conn.execute("SELECT * FROM tickets LIMIT 0").description]
    tickets = [dict(zip(cols, row, strict=True)) for row in every]
    wanted = {
        t["id"]
        for t in tickets
        if may_see(viewer, t) and t["status"] == filters.get("status", t["status"])
    }
    assert {r["id"] for r in rows if r["id"] is not None} == wanted
    assert rows[0]["matching"] == min(len(wanted), cap + 1)
