"""An AGENT reaches only the tickets assigned to it (issue 10: a mutation that let AGENTs
see unassigned tickets inside lock_visible_ticket went uncaught; an AGENT's PATCH closed
such a ticket). Every route that names a ticket, API and pages, is tried against a ticket
that is unassigned and one assigned to someone else, and the database must not change.
With AGENTS_SEE_UNASSIGNED (DESIGN.md section 12) the unassigned ticket opens to the AGENT
(tests/api/test_take.py), and someone else's stays out of reach the same way."""

from __future__ import annotations

import json
import re

import pytest
import webtest

from supportdesk.files.storage import LocalStorage
from supportdesk.web.routes import ROUTES
from tests.conftest import shared_app
from tests.factories import make_attachment, make_message, make_ticket

# (method, path, body) -> the status an AGENT gets for a ticket it does not hold.
CASES = [
    ("GET", "/api/tickets/{pid}", None, 404),
    ("PATCH", "/api/tickets/{pid}", {"status": "CLOSED", "priority": "URGENT"}, 404),
    ("POST", "/api/tickets/{pid}/assign", {"user_id": "me"}, 403),
    ("POST", "/api/tickets/{pid}/take", None, 404),
    ("POST", "/api/tickets/{pid}/spam", None, 404),
    ("POST", "/api/tickets/{pid}/follow", None, 404),
    ("DELETE", "/api/tickets/{pid}/follow", None, 404),
    ("GET", "/api/tickets/{pid}/events", None, 404),
    ("GET", "/api/tickets/{pid}/messages", None, 404),
    ("POST", "/api/tickets/{pid}/messages", {"body": "Injected"}, 404),
    ("GET", "/api/tickets/{pid}/messages/{message_id}/original", None, 404),
    ("GET", "/api/attachments/{attachment_id}", None, 404),
    ("POST", "/api/tickets/{pid}/merge", {"into": "202601-00001"}, 404),
    ("POST", "/api/tickets/{pid}/messages/{message_id}/split", None, 404),
    ("POST", "/tickets/{pid}/merge", {"into": "202601-00001"}, 404),
    ("POST", "/tickets/{pid}/messages/{message_id}/split", None, 404),
    ("GET", "/tickets/{pid}", None, 404),
    ("POST", "/tickets/{pid}", {"status": "CLOSED", "priority": "URGENT"}, 404),
    ("POST", "/tickets/{pid}/assign", {"user_id": "{agent_id}"}, 403),
    ("POST", "/tickets/{pid}/take", None, 404),
    ("POST", "/tickets/{pid}/spam", None, 404),
    ("POST", "/tickets/{pid}/follow", {"follow": "yes"}, 404),
    ("POST", "/tickets/{pid}/messages", {"body": "Injected"}, 404),
    ("GET", "/api/tickets/{pid}/participants", None, 404),
    ("POST", "/api/tickets/{pid}/participants", {"email": "eve@evil.example"}, 404),
    ("DELETE", "/api/tickets/{pid}/participants/dana@example.org", None, 404),
    ("POST", "/tickets/{pid}/participants", {"email": "eve@evil.example"}, 404),
    ("POST", "/tickets/{pid}/participants/remove", {"email": "dana@example.org"}, 404),
    # The ticket is looked up first: no saved reply is needed to be refused
    # (tests/api/test_rbac_matrix.py tries it with one).
    ("POST", "/tickets/{pid}/saved-reply", {"saved_reply_id": "1", "body": "Typed"}, 404),
    ("GET", "/t/{pid}", None, 404),
    ("POST", "/t/{pid}", {"body": "Injected"}, 404),
]
TABLES = (
    "tickets",
    "ticket_messages",
    "ticket_events",
    "email_outbox",
    "attachments",
    "blocked_senders",
    "ticket_followers",
)


def test_every_route_that_names_a_ticket_is_tried():
    named = {
        (method, route.path.replace(":int", ""))
        for route in ROUTES
        if re.search(r"{(pid|attachment_id)", route.path)
        for method in route.operations
    }
    tried = {(m, p.replace("dana@example.org", "{email}")) for m, p, _, _ in CASES}
    assert named == tried


def _snapshot(db) -> dict[str, list]:
    with db.transaction() as conn:
        copied = conn.execute(
            "SELECT to_jsonb(p) FROM ticket_participants p ORDER BY ticket_id, email"
        ).fetchall()
        return {
            table: conn.execute(f"SELECT to_jsonb(t) FROM {table} t ORDER BY 1").fetchall()
            for table in TABLES
        } | {"ticket_participants": copied}


@pytest.fixture(
    params=[
        ("unassigned", False),
        ("someone else's", False),
        ("someone else's", True),  # AGENTS_SEE_UNASSIGNED opens the pile, nothing more
    ],
    ids=["unassigned", "someone else's", "someone else's, agents see unassigned"],
)
def target(request, db, make_staff, settings, redis_client):
    whose, agents_see_unassigned = request.param
    owner = None if whose == "unassigned" else make_staff("AGENT")["id"]
    with db.transaction() as conn:
        ticket = make_ticket(conn, assigned_to=owner, status="OPEN")
        # An email with its HTML: the original route would have something to show.
        message = make_message(conn, ticket["id"], channel="EMAIL", html_body="<p>Secret</p>")
        attachment = make_attachment(
            conn, LocalStorage(settings.upload_dir), ticket["id"], message["id"]
        )
        conn.execute(
            "INSERT INTO ticket_participants (ticket_id, email, name, added_at) "
            "VALUES (%s, 'dana@example.org', 'Dana', now())",
            (ticket["id"],),
        )
    app = shared_app(settings.replace(agents_see_unassigned=agents_see_unassigned), db)
    return app, ticket, attachment, message


@pytest.mark.parametrize(("method", "path", "body", "status"), CASES)
def test_an_agent_cannot_reach_a_ticket_it_does_not_hold(
    db, make_staff, tokens, target, method, path, body, status
):
    app, ticket, attachment, message = target
    agent = make_staff("AGENT")
    token, session = tokens.issue(agent)
    client = webtest.TestApp(app)
    url = path.format(pid=ticket["pid"], attachment_id=attachment["id"], message_id=message["id"])
    before = _snapshot(db)
    if path.startswith("/api/"):
        resp = client.request(
            url,
            method=method,
            headers={"Authorization": f"Bearer {token}"},
            body=json.dumps(body).encode() if body else b"",
            content_type="application/json" if body else None,
            expect_errors=True,
        )
    else:  # a browser: the session cookie, and the form's CSRF token
        client.set_cookie("session", token)
        form = {k: v.format(agent_id=agent["id"]) for k, v in (body or {}).items()}
        form["csrf_token"] = tokens.csrf_token(session)
        headers = {"Accept": "text/html"}
        if method == "GET":
            resp = client.get(url, headers=headers, expect_errors=True)
        else:
            resp = client.post(url, form, headers=headers, expect_errors=True)
    assert resp.status_int == status, resp.text
    assert _snapshot(db) == before


def test_an_agents_list_leaves_out_what_it_does_not_hold(client, db, make_staff, bearer):
    agent = make_staff("AGENT")
    with db.transaction() as conn:
        make_ticket(conn, assigned_to=None)
        make_ticket(conn, assigned_to=make_staff("AGENT")["id"])
        mine = make_ticket(conn, assigned_to=agent["id"])
    for query in ("", "?assigned_to=none", "?status=OPEN", f"?q={mine['subject'][:4]}"):
        items = client.get(f"/api/tickets{query}", headers=bearer(agent)).json["items"]
        assert {t["pid"] for t in items} <= {mine["pid"]}, query
