"""The ticket API: creation, the list and its filters, one ticket, changes, assignment,
the timeline, and the AGENT 404 rule."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from supportdesk.mail.outbound.outbox import EMAIL_QUEUE
from supportdesk.tickets.service import TOTAL_CAP
from tests.conftest import shared_app
from tests.factories import expected_pid, make_ticket

NEW = {
    "name": "Cleo Customer",
    "email": "Cleo@Example.org",
    "subject": "Printer jams",
    "body": "Tray 2 jams on every\nsecond page.",
}


def outbox(db):
    with db.transaction() as conn:
        return conn.execute(
            "SELECT id, ticket_id, to_address, subject, body_text, message_id, headers, status "
            "FROM email_outbox ORDER BY id"
        ).fetchall()


def events(db, ticket_id=None):
    with db.transaction() as conn:
        return conn.execute(
            "SELECT type, actor_id, data FROM ticket_events "
            + ("WHERE ticket_id = %s " if ticket_id else "")
            + "ORDER BY id",
            (ticket_id,) if ticket_id else (),
        ).fetchall()


# --- creating ------------------------------------------------------------------------------


def test_public_creation_writes_ticket_message_event_and_acknowledgement(client, db, redis_client):
    resp = client.post_json("/api/tickets", NEW, status=201)
    ticket = resp.json["ticket"]
    pid = expected_pid(ticket["created_at"], 1)
    assert ticket["pid"] == pid
    assert resp.headers["Location"] == f"/api/tickets/{pid}"
    assert ticket["status"] == "OPEN"
    assert ticket["priority"] == "NORMAL"
    assert ticket["requester"] == {"email": "cleo@example.org", "name": "Cleo Customer"}
    assert ticket["assigned_to"] is None
    with db.transaction() as conn:
        row = conn.execute("SELECT id, channel FROM tickets WHERE pid = %s", (pid,)).fetchone()
        message = conn.execute(
            "SELECT author, channel, visibility, body, author_email FROM ticket_messages "
            "WHERE ticket_id = %s",
            (row[0],),
        ).fetchall()
    assert row[1] == "API"
    assert message == [("CUSTOMER", "API", "PUBLIC", NEW["body"], "cleo@example.org")]
    assert events(db, row[0]) == [
        (
            "CREATED",
            None,
            {
                "channel": "API",
                "priority": "NORMAL",
                "requester": {"email": "cleo@example.org", "name": "Cleo Customer"},
            },
        )
    ]
    (email,) = outbox(db)
    assert email[1:4] == (
        row[0],
        "cleo@example.org",
        f"[#{pid}] We received your request: Printer jams",
    )
    assert pid in email[4]
    assert email[5].startswith(f"<sd.{pid}.ack.")
    assert email[5].endswith("@example.com>")
    assert email[6] == {"Auto-Submitted": "auto-replied"}
    assert email[7] == "PENDING"
    # After the commit, the outbox id is on the queue for the worker.
    assert redis_client.lrange(EMAIL_QUEUE, 0, -1) == [str(email[0]).encode()]


def test_priority_may_be_given(client):
    resp = client.post_json("/api/tickets", NEW | {"priority": "URGENT"}, status=201)
    assert resp.json["ticket"]["priority"] == "URGENT"


def test_staff_creates_a_ticket_on_a_customers_behalf(client, make_staff, bearer, db):
    agent = make_staff("AGENT", name="Bo")
    resp = client.post_json("/api/tickets", NEW, headers=bearer(agent), status=201)
    assert resp.json["ticket"]["requester"]["email"] == "cleo@example.org"
    ((kind, actor, data),) = events(db)
    assert (kind, actor) == ("CREATED", agent["id"])
    assert data["channel"] == "API"
    with db.transaction() as conn:
        author = conn.execute("SELECT author, author_user_id FROM ticket_messages").fetchone()
    assert author == ("CUSTOMER", None)  # the words are the customer's


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"name": ""}, {"name"}),
        ({"email": "nope"}, {"email"}),
        ({"subject": "   "}, {"subject"}),
        ({"subject": "x" * 256}, {"subject"}),
        ({"subject": "bell\x07"}, {"subject"}),
        ({"body": ""}, {"body"}),
        ({"body": "x" * 50_001}, {"body"}),
        ({"priority": "CRITICAL"}, {"priority"}),
        ({"cc": "x@example.org"}, {"cc"}),
        (
            {"name": 5, "email": None, "subject": [], "body": {}},
            {"name", "email", "subject", "body"},
        ),
    ],
)
def test_creation_validation_names_each_field(client, db, change, fields):
    resp = client.post_json("/api/tickets", NEW | change, status=422)
    assert resp.json["error"]["code"] == "validation_error"
    assert set(resp.json["error"]["details"]) == fields
    assert outbox(db) == []
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pid_counters").fetchone() == (0,)


def test_multiline_subject_is_folded_to_one_line(client):
    resp = client.post_json(
        "/api/tickets", NEW | {"subject": "Printer\r\n  jams\tagain"}, status=201
    )
    assert resp.json["ticket"]["subject"] == "Printer jams again"


def test_creation_without_redis_still_succeeds_and_keeps_the_email(settings, db):
    """The ticket and its outbox row are committed; the sweeper re-enqueues later."""
    import webtest

    from supportdesk.dev.embedded import free_port

    dead = settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = webtest.TestApp(shared_app(dead, db))
    client.post_json("/api/tickets", NEW, status=201)
    assert [row[7] for row in outbox(db)] == ["PENDING"]


# --- the list ------------------------------------------------------------------------------


@pytest.fixture
def listed(db, make_staff):
    """Three staff and a spread of tickets, oldest first."""
    ana = make_staff("ADMIN", name="Ana")
    bo = make_staff("AGENT", name="Bo")
    cy = make_staff("AGENT", name="Cy")
    base = datetime(2026, 10, 1, tzinfo=UTC)
    specs = [
        ("Invoice shows wrong VAT", "OPEN", "HIGH", bo, "dora@example.org", "Dora"),
        ("Cannot log in to the app", "OPEN", "NORMAL", None, "emil@example.org", "Emil"),
        ("Refund for order 1182", "RESOLVED", "LOW", cy, "finn@example.org", "Finn Refund"),
        ("Login link expired", "WAITING", "URGENT", bo, "gus@example.org", "Gus"),
        ("Printer 100% broken_now", "OPEN", "NORMAL", None, "hana@example.org", "Hana"),
    ]
    with db.transaction() as conn:
        tickets = [
            make_ticket(
                conn,
                now=base + timedelta(hours=i),
                subject=subject,
                status=status,
                priority=priority,
                assigned_to=who["id"] if who else None,
                requester_email=email,
                requester_name=name,
            )
            for i, (subject, status, priority, who, email, name) in enumerate(specs)
        ]
    return {"ana": ana, "bo": bo, "cy": cy, "tickets": tickets}


def subjects(resp):
    return [t["subject"] for t in resp.json["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "",
            [
                "Printer 100% broken_now",
                "Login link expired",
                "Refund for order 1182",
                "Cannot log in to the app",
                "Invoice shows wrong VAT",
            ],
        ),
        (
            "status=OPEN",
            ["Printer 100% broken_now", "Cannot log in to the app", "Invoice shows wrong VAT"],
        ),
        ("status=open&priority=normal", ["Printer 100% broken_now", "Cannot log in to the app"]),
        ("priority=URGENT", ["Login link expired"]),
        ("assigned_to=none", ["Printer 100% broken_now", "Cannot log in to the app"]),
        ("assigned_to={bo}", ["Login link expired", "Invoice shows wrong VAT"]),
        ("assigned_to={bo}&status=OPEN", ["Invoice shows wrong VAT"]),
        ("q=LOGIN", ["Login link expired"]),  # case-insensitive; "log in" is not "login"
        ("q=log+in", ["Cannot log in to the app"]),
        ("q=refund", ["Refund for order 1182"]),  # subject and requester name both match
        ("q=hana@example", ["Printer 100% broken_now"]),  # requester email
        ("q=100%25", ["Printer 100% broken_now"]),  # % is a character, not a wildcard
        ("q=o_e", []),  # so is _ (as a wildcard it would match "broken")
        ("q=broken_", ["Printer 100% broken_now"]),
        # Issue 10: a ticket number, an exact email address, two letters (a word's start).
        ("q=202610-00003", ["Refund for order 1182"]),
        ("q=FINN@example.org", ["Refund for order 1182"]),
        ("q=finn@example.or", []),  # an address is matched whole
        ("q=re", ["Refund for order 1182"]),  # "expired" has "re" inside, not at a start
        ("q=lo", ["Login link expired", "Cannot log in to the app"]),
        ("status=CLOSED", []),
    ],
)
def test_filters(client, bearer, listed, query, expected):
    query = query.format(bo=listed["bo"]["id"])
    resp = client.get(f"/api/tickets?{query}", headers=bearer(listed["ana"]))
    assert subjects(resp) == expected
    assert resp.json["total"] == len(expected)
    assert resp.json["total_capped"] is False


def test_a_number_alone_finds_that_ticket_of_this_month(client, bearer, db, make_staff):
    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        # Subjects and requesters given: the factory's own ("Printer on floor <n>",
        # "customer<n>@…", counted across the run) may hold "500".
        who = {"requester_email": "ada@example.org", "requester_name": "Ada"}
        last_month = make_ticket(
            conn, now=datetime.now(UTC) - timedelta(days=40), subject="Last month's question", **who
        )
        tickets = [make_ticket(conn, subject=f"Error 500 case {n}", **who) for n in range(3)]
        make_ticket(conn, subject="Quota at 5000", **who)
    second = tickets[1]["pid"].split("-")[1]
    assert last_month["pid"].endswith("-00001")  # its month has its own counter
    for q in (str(int(second)), second):  # "2" and "00002"
        resp = client.get(f"/api/tickets?q={q}", headers=bearer(admin)).json
        assert [t["pid"] for t in resp["items"]] == [tickets[1]["pid"]], q
    # Three digits or more may also be text: the ticket numbered 500 (none) or "500".
    found = client.get("/api/tickets?q=500", headers=bearer(admin)).json["items"]
    assert sorted(t["subject"] for t in found) == [
        "Error 500 case 0",
        "Error 500 case 1",
        "Error 500 case 2",
        "Quota at 5000",
    ]


def test_a_text_search_counts_only_so_far(client, bearer, db, make_staff):
    from supportdesk.tickets.search import TEXT_TOTAL_CAP

    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        for n in range(TEXT_TOTAL_CAP + 2):
            make_ticket(conn, subject=f"Refund number {n}", requester_email=f"r{n}@example.org")
    page = client.get("/api/tickets?q=refund", headers=bearer(admin)).json
    assert (page["total"], page["total_capped"]) == (TEXT_TOTAL_CAP, True)
    exact = client.get("/api/tickets?q=r7@example.org", headers=bearer(admin)).json
    assert (exact["total"], exact["total_capped"]) == (1, False)


def test_assigned_to_me(client, bearer, listed):
    resp = client.get("/api/tickets?assigned_to=me", headers=bearer(listed["bo"]))
    assert subjects(resp) == ["Login link expired", "Invoice shows wrong VAT"]


def test_agent_sees_only_its_own_tickets(client, bearer, listed):
    resp = client.get("/api/tickets", headers=bearer(listed["cy"]))
    assert subjects(resp) == ["Refund for order 1182"]
    assert resp.json["total"] == 1
    # Asking for someone else's or unassigned tickets shows nothing, not an error.
    for query in (f"assigned_to={listed['bo']['id']}", "assigned_to=none"):
        assert client.get(f"/api/tickets?{query}", headers=bearer(listed["cy"])).json["items"] == []


def test_item_shape(client, bearer, listed):
    item = client.get("/api/tickets?priority=HIGH", headers=bearer(listed["ana"])).json["items"][0]
    assert item == {
        "pid": listed["tickets"][0]["pid"],
        "subject": "Invoice shows wrong VAT",
        "status": "OPEN",
        "priority": "HIGH",
        "requester": {"email": "dora@example.org", "name": "Dora"},
        "assigned_to": {"id": listed["bo"]["id"], "name": "Bo", "email": listed["bo"]["email"]},
        "mailbox_id": None,
        "waiting_until": None,
        "created_at": "2026-10-01T00:00:00+00:00",
        "updated_at": "2026-10-01T00:00:00+00:00",
    }


def test_pagination_newest_first(client, bearer, listed):
    headers = bearer(listed["ana"])
    pages = [
        client.get(f"/api/tickets?per_page=2&page={n}", headers=headers).json for n in (1, 2, 3, 4)
    ]
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    assert all(p["total"] == 5 and p["per_page"] == 2 for p in pages)
    assert [p["page"] for p in pages] == [1, 2, 3, 4]
    seen = [t["pid"] for p in pages for t in p["items"]]
    assert seen == [t["pid"] for t in reversed(listed["tickets"])]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("status=DONE", "status"),
        ("priority=MEGA", "priority"),
        ("assigned_to=someone", "assigned_to"),
        ("assigned_to=-1", "assigned_to"),
        ("q=a", "q"),
        ("q=--", "q"),  # no letter or digit: the trigram index holds nothing of it
        ("q=%25%25%25%25", "q"),
        ("q=%20x%20", "q"),
        ("q=" + "x" * 201, "q"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("page=100000", "page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("status=OPEN&status=WAITING", "status"),
    ],
)
def test_bad_filter_values_are_a_422_naming_the_parameter(client, bearer, make_staff, query, param):
    resp = client.get(f"/api/tickets?{query}", headers=bearer(make_staff("ADMIN")), status=422)
    assert resp.json["error"]["code"] == "validation_error"
    assert set(resp.json["error"]["details"]) == {param}


def test_total_is_capped_with_a_flag(client, bearer, make_staff, db):
    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO tickets (pid, subject, requester_email, requester_name, channel) "
            "SELECT '202601-' || lpad(g::text, 5, '0'), 'Bulk ' || g, 'bulk@example.org', "
            "'Bulk', 'WEB' FROM generate_series(1, %s) g",
            (TOTAL_CAP + 5,),
        )
    body = client.get("/api/tickets?per_page=1", headers=bearer(admin)).json
    assert body["total"] == TOTAL_CAP
    assert body["total_capped"] is True
    narrow = client.get("/api/tickets?q=Bulk+7777", headers=bearer(admin)).json
    assert (narrow["total"], narrow["total_capped"]) == (1, False)


# --- one ticket and its changes -----------------------------------------------------------


def test_get_one_ticket(client, bearer, listed):
    pid = listed["tickets"][3]["pid"]
    ticket = client.get(f"/api/tickets/{pid}", headers=bearer(listed["bo"])).json["ticket"]
    assert ticket["subject"] == "Login link expired"
    assert ticket["assigned_to"]["name"] == "Bo"


@pytest.mark.parametrize("suffix", ["", "/events"])
def test_agent_gets_404_for_a_ticket_not_assigned_to_it(client, bearer, listed, suffix):
    other = listed["tickets"][0]["pid"]  # Bo's
    resp = client.get(f"/api/tickets/{other}{suffix}", headers=bearer(listed["cy"]), status=404)
    missing = client.get(
        f"/api/tickets/209901-99999{suffix}", headers=bearer(listed["cy"]), status=404
    )
    # Indistinguishable from a ticket that does not exist.
    assert resp.json["error"]["message"] == missing.json["error"]["message"]


def test_agent_cannot_change_a_ticket_not_assigned_to_it(client, bearer, listed, db):
    other = listed["tickets"][0]
    client.patch_json(
        f"/api/tickets/{other['pid']}",
        {"status": "CLOSED"},
        headers=bearer(listed["cy"]),
        status=404,
    )
    assert events(db, other["id"]) == []


@pytest.mark.parametrize("pid", ["nonsense", "2026-1", "202611-00001x", "%27%20OR%201=1"])
def test_malformed_pid_is_404(client, bearer, make_staff, pid):
    client.get(f"/api/tickets/{pid}", headers=bearer(make_staff("ADMIN")), status=404)


def test_patch_writes_one_event_per_real_change(client, bearer, listed, db):
    ticket = listed["tickets"][0]  # OPEN, HIGH
    headers = bearer(listed["bo"])
    resp = client.patch_json(
        f"/api/tickets/{ticket['pid']}",
        {"status": "IN_PROGRESS", "priority": "HIGH"},
        headers=headers,
    )
    assert resp.json["ticket"]["status"] == "IN_PROGRESS"
    assert resp.json["ticket"]["updated_at"] != resp.json["ticket"]["created_at"]
    assert events(db, ticket["id"]) == [
        ("STATUS_CHANGED", listed["bo"]["id"], {"from": "OPEN", "to": "IN_PROGRESS"})
    ]
    client.patch_json(f"/api/tickets/{ticket['pid']}", {"priority": "LOW"}, headers=headers)
    assert events(db, ticket["id"])[-1] == (
        "PRIORITY_CHANGED",
        listed["bo"]["id"],
        {"from": "HIGH", "to": "LOW"},
    )


def test_a_no_op_change_writes_nothing(client, bearer, listed, db):
    ticket = listed["tickets"][0]
    resp = client.patch_json(
        f"/api/tickets/{ticket['pid']}",
        {"status": "OPEN", "priority": "HIGH"},
        headers=bearer(listed["ana"]),
    )
    assert resp.json["ticket"]["updated_at"] == "2026-10-01T00:00:00+00:00"
    assert events(db, ticket["id"]) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"status": "DONE"}, {"status"}),
        ({"priority": 3}, {"priority"}),
        ({}, {"status"}),
        ({"subject": "x"}, {"subject"}),
    ],
)
def test_patch_validation(client, bearer, listed, body, fields):
    resp = client.patch_json(
        f"/api/tickets/{listed['tickets'][0]['pid']}",
        body,
        headers=bearer(listed["ana"]),
        status=422,
    )
    assert set(resp.json["error"]["details"]) == fields


# --- assignment ------------------------------------------------------------------------------


def test_assign_writes_event_and_notifies_the_assignee(client, bearer, listed, db, redis_client):
    ticket = listed["tickets"][1]  # unassigned
    resp = client.post_json(
        f"/api/tickets/{ticket['pid']}/assign",
        {"user_id": listed["cy"]["id"]},
        headers=bearer(listed["ana"]),
    )
    assert resp.json["ticket"]["assigned_to"]["name"] == "Cy"
    assert events(db, ticket["id"]) == [
        (
            "ASSIGNED",
            listed["ana"]["id"],
            {"from": None, "to": {"id": listed["cy"]["id"], "name": "Cy"}},
        )
    ]
    (email,) = outbox(db)
    assert email[2] == listed["cy"]["email"]
    assert email[3] == f"[#{ticket['pid']}] Assigned to you: Cannot log in to the app"
    assert f"http://127.0.0.1:8000/tickets/{ticket['pid']}" in email[4]
    assert "Ana assigned" in email[4]
    assert redis_client.lrange(EMAIL_QUEUE, 0, -1) == [str(email[0]).encode()]
    # Cy can now open it.
    client.get(f"/api/tickets/{ticket['pid']}", headers=bearer(listed["cy"]))


def test_reassign_and_unassign(client, bearer, listed, db):
    ticket = listed["tickets"][0]  # Bo's
    headers = bearer(listed["ana"])
    client.post_json(
        f"/api/tickets/{ticket['pid']}/assign", {"user_id": listed["cy"]["id"]}, headers=headers
    )
    client.post_json(f"/api/tickets/{ticket['pid']}/assign", {"user_id": None}, headers=headers)
    bo = {"id": listed["bo"]["id"], "name": "Bo"}
    cy = {"id": listed["cy"]["id"], "name": "Cy"}
    assert events(db, ticket["id"]) == [
        ("ASSIGNED", listed["ana"]["id"], {"from": bo, "to": cy}),
        ("UNASSIGNED", listed["ana"]["id"], {"from": cy}),
    ]
    assert len(outbox(db)) == 1  # only the assignment is emailed


def test_assigning_to_the_current_assignee_or_yourself(client, bearer, listed, db):
    ticket = listed["tickets"][0]  # Bo's
    headers = bearer(listed["ana"])
    client.post_json(
        f"/api/tickets/{ticket['pid']}/assign", {"user_id": listed["bo"]["id"]}, headers=headers
    )
    assert events(db, ticket["id"]) == []  # nothing changed, nothing written
    client.post_json(
        f"/api/tickets/{ticket['pid']}/assign", {"user_id": listed["ana"]["id"]}, headers=headers
    )
    assert [e[0] for e in events(db, ticket["id"])] == ["ASSIGNED"]
    assert outbox(db) == []  # nobody is told what they just did themselves


@pytest.mark.parametrize("who", ["inactive", "unknown", "text", "bool", "missing"])
def test_assign_validation(client, bearer, listed, make_staff, db, who):
    gone = make_staff("AGENT", is_active=False)
    body = {
        "inactive": {"user_id": gone["id"]},
        "unknown": {"user_id": 999_999},
        "text": {"user_id": "bo"},
        "bool": {"user_id": True},
        "missing": {},
    }[who]
    ticket = listed["tickets"][1]
    resp = client.post_json(
        f"/api/tickets/{ticket['pid']}/assign", body, headers=bearer(listed["ana"]), status=422
    )
    assert set(resp.json["error"]["details"]) == {"user_id"}
    assert events(db, ticket["id"]) == []


def test_agents_cannot_assign(client, bearer, listed):
    ticket = listed["tickets"][0]  # Bo's own
    resp = client.post_json(
        f"/api/tickets/{ticket['pid']}/assign",
        {"user_id": listed["cy"]["id"]},
        headers=bearer(listed["bo"]),
        status=403,
    )
    assert resp.json["error"]["code"] == "forbidden"


# --- the timeline ------------------------------------------------------------------------------


def test_timeline_is_exactly_what_happened_in_order(client, bearer, make_staff):
    ana = make_staff("ADMIN", name="Ana")
    bo = make_staff("AGENT", name="Bo")
    cy = make_staff("AGENT", name="Cy")
    headers = bearer(ana)
    pid = client.post_json("/api/tickets", NEW).json["ticket"]["pid"]
    client.post_json(f"/api/tickets/{pid}/assign", {"user_id": bo["id"]}, headers=headers)
    client.post_json(f"/api/tickets/{pid}/assign", {"user_id": cy["id"]}, headers=headers)
    client.patch_json(f"/api/tickets/{pid}", {"status": "RESOLVED"}, headers=headers)
    items = client.get(f"/api/tickets/{pid}/events", headers=headers).json["items"]
    assert [(e["type"], e["actor"], e["summary"]) for e in items] == [
        ("CREATED", None, "Cleo Customer opened this ticket via the API"),
        ("ASSIGNED", {"id": ana["id"], "name": "Ana"}, "Ana assigned this to Bo"),
        ("ASSIGNED", {"id": ana["id"], "name": "Ana"}, "Ana reassigned this from Bo to Cy"),
        ("STATUS_CHANGED", {"id": ana["id"], "name": "Ana"}, "Status: Open → Resolved"),
    ]
    assert items[3]["data"] == {"from": "OPEN", "to": "RESOLVED"}
    assert [e["id"] for e in items] == sorted(e["id"] for e in items)
    assert all(e["created_at"].endswith("+00:00") for e in items)


# --- limits on the public ----------------------------------------------------------------


@pytest.fixture
def limited(settings, db):
    import webtest

    tight = settings.replace(public_tickets_per_address=3, public_tickets_per_requester=2)
    return webtest.TestApp(shared_app(tight, db))


def test_public_creation_is_limited_per_requester_and_per_address(limited, db):
    limited.post_json("/api/tickets", NEW, status=201)
    limited.post_json("/api/tickets", NEW, status=201)
    resp = limited.post_json("/api/tickets", NEW, status=429)  # a third for the same person
    assert resp.json["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600
    # Someone else from the same address: the refused attempt was not counted, so the
    # address has had 2 of its 3; the one after is refused.
    other = NEW | {"email": "dora@example.org"}
    limited.post_json("/api/tickets", other, status=201)
    limited.post_json("/api/tickets", other, status=429)
    # Another address is not affected.
    limited.post_json("/api/tickets", other, extra_environ={"REMOTE_ADDR": "10.1.2.3"}, status=201)
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (4,)
        assert conn.execute("SELECT count(*) FROM email_outbox").fetchone() == (4,)


def test_staff_creating_on_behalf_is_not_limited(limited, make_staff, bearer):
    headers = bearer(make_staff("AGENT"))
    for _ in range(4):
        limited.post_json("/api/tickets", NEW, headers=headers, status=201)


def test_the_public_form_explains_the_limit_and_keeps_the_input(limited):
    browser = limited
    for _ in range(2):
        browser.post_json("/api/tickets", NEW, status=201)
    page = browser.get("/", headers={"Accept": "text/html"})
    form = next(f for f in page.forms.values() if f.action == "/")
    for field in ("name", "email", "subject", "body"):
        form[field] = NEW[field]
    resp = form.submit(headers={"Accept": "text/html"}, status=429)
    assert "Too many requests were sent from here" in resp.text
    assert resp.headers["Retry-After"]
    kept = next(f for f in resp.forms.values() if f.action == "/")
    assert kept["body"].value == NEW["body"]


def test_a_refused_ticket_uses_none_of_the_requesters_acknowledgements(settings, db, redis_client):
    """The form's limits and the acknowledgement limit are checked in one script: a ticket
    refused by the first is not counted against the second."""
    import webtest

    from supportdesk.core.ratelimit import AckThrottle

    tight = settings.replace(public_tickets_per_requester=1, acks_per_address=2)
    client = webtest.TestApp(shared_app(tight, db))
    client.post_json("/api/tickets", NEW, status=201)
    for _ in range(3):
        client.post_json("/api/tickets", NEW, status=429)
    counters = AckThrottle(redis_client, per_address=2, per_domain=9, per_hour=9).counters(
        NEW["email"]
    )
    assert [redis_client.get(c.key) for c in counters] == [b"1", b"1", b"1"]
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM email_outbox").fetchone() == (1,)


def test_a_public_ticket_costs_two_redis_commands(client, redis_client):
    """Both limits in one script before the transaction, the queue push after it: each
    command is a round trip on the way to the customer's answer. Counted with MONITOR, in
    this test's own database: other clients of the same server do not count."""
    client.post_json("/api/tickets", NEW, status=201)  # the scripts are loaded
    database = redis_client.connection_pool.connection_kwargs.get("db", 0)
    start, end = (f"{edge}-{secrets.token_hex(4)}" for edge in ("start", "end"))
    sent: list[str] | None = None
    with redis_client.monitor() as monitor:
        redis_client.echo(start)  # after this test's own connection is set up (SELECT)
        client.post_json("/api/tickets", NEW | {"email": "dora@example.org"}, status=201)
        redis_client.echo(end)
        for command in monitor.listen():
            if start in command["command"]:
                sent = []
            elif end in command["command"]:
                break
            # What a script runs is shown too (client "lua"): those are not round trips.
            elif sent is not None and command["db"] == database and command["client_type"] != "lua":
                sent.append(command["command"].split()[0].upper())
    assert sorted(sent or []) == ["EVALSHA", "LPUSH"]


def test_the_public_form_cannot_flood_someones_inbox(settings, db, make_staff, bearer):
    """Issue 10, finding 7: the form relayed mail to any address. Each address gets a few
    acknowledgements a day; the tickets are still opened."""
    import webtest

    few = settings.replace(acks_per_address=2)
    client = webtest.TestApp(shared_app(few, db))
    victim = NEW | {"email": "victim@example.org"}
    for n in range(4):  # from four addresses, past any per-address limit
        client.post_json(
            "/api/tickets", victim, extra_environ={"REMOTE_ADDR": f"10.0.0.{n}"}, status=201
        )
    # Staff opening one on the customer's behalf is not limited.
    client.post_json("/api/tickets", victim, headers=bearer(make_staff("AGENT")), status=201)
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (5,)
        assert conn.execute(
            "SELECT count(*) FROM email_outbox WHERE to_address = 'victim@example.org'"
        ).fetchone() == (3,)
