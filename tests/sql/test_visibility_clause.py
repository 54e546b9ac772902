"""Every query that filters tickets by viewer writes the one visibility rule of
supportdesk/tickets/access.py, whole: a query that took the viewer's id but forgot the
unassigned tickets (or took `viewer_sees_all` and nothing else) would quietly disagree with
the others."""

from __future__ import annotations

import re

from supportdesk.core.db import SQL_DIR, parse_query_file, queries
from supportdesk.tickets.access import VISIBLE_TO_VIEWER, visibility

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
    assert RULE_PARAMS == {"viewer_sees_all", "viewer_sees_unassigned", "viewer_id"}
    assert set(re.findall(r":(\w+)", VISIBLE_TO_VIEWER)) == RULE_PARAMS


def test_every_query_by_viewer_writes_the_whole_rule():
    viewer_queries = _viewer_queries()
    assert {name for name, _ in viewer_queries} >= {
        "visible_ticket",
        "lock_visible_ticket",
        "list_tickets",
        "visible_attachment",
    }
    for name, block in viewer_queries:
        assert _flat(VISIBLE_TO_VIEWER) in _flat(block), name
        assert RULE_PARAMS <= getattr(queries, name).params, name


def test_the_check_finds_a_query_that_forgets_the_unassigned_tickets(tmp_path):
    forgetful = (
        "-- name: forgetful^\n-- A query with the v1 rule.\n"
        "SELECT * FROM tickets t WHERE (:viewer_sees_all OR t.assigned_to = :viewer_id);\n"
    )
    [query] = parse_query_file(forgetful, "forgetful.sql")
    assert _flat(VISIBLE_TO_VIEWER) not in _flat(forgetful)
    assert not RULE_PARAMS <= query.params
