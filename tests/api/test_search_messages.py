"""Finding things (DESIGN.md section 12, issue 22 part 6): `q` also finds words in the
messages (full-text search on ticket_messages.search_vector), `requester=` filters, and the
ticket page lists the requester's other tickets, as far as the viewer may see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import webtest

from supportdesk.tickets.search import Search
from tests.conftest import STAFF_PASSWORD, shared_app
from tests.factories import make_message, make_ticket


@pytest.fixture
def shared(settings, db, redis_client) -> webtest.TestApp:
    """The app of a desk whose AGENTs see the unassigned pile."""
    on = settings.replace(agents_see_unassigned=True)
    return webtest.TestApp(shared_app(on, db))


@pytest.fixture
def desk(db, make_staff):
    """Tickets whose subjects say nothing of what their messages say."""
    admin = make_staff("ADMIN")
    agent, colleague = make_staff("AGENT"), make_staff("AGENT")
    staff = {"author": "STAFF", "author_email": None}
    with db.transaction() as conn:
        t = {
            "mine": make_ticket(conn, subject="Question one", assigned_to=agent["id"]),
            "theirs": make_ticket(conn, subject="Question two", assigned_to=colleague["id"]),
            "pile": make_ticket(conn, subject="Question three"),
            "noted": make_ticket(conn, subject="Question four", assigned_to=agent["id"]),
        }
        make_message(conn, t["mine"]["id"], body="The zebrafish importer stopped at row 12.")
        make_message(conn, t["theirs"]["id"], body="Our zebrafish export is empty, again.")
        make_message(conn, t["pile"]["id"], body="Hello,\nthe quokka sync fails (error E1042).")
        make_message(
            conn,
            t["noted"]["id"],
            body="Customer is on the legacy plan: check with billing first.",
            visibility="INTERNAL",
            author_user_id=admin["id"],
            **staff,
        )
    return admin, agent, colleague, t


def _found(client, headers, q: str, **params: str) -> list[str]:
    query = "&".join([f"q={quote(q)}", *(f"{k}={quote(v)}" for k, v in params.items())])
    resp = client.get(f"/api/tickets?{query}", headers=headers)
    assert resp.status_int == 200, resp.text
    assert resp.json["total"] == len(resp.json["items"])
    return sorted(item["subject"] for item in resp.json["items"])


def test_a_word_only_in_a_message_body_is_found(client, bearer, desk):
    admin, *_ = desk
    assert _found(client, bearer(admin), "zebrafish") == ["Question one", "Question two"]
    assert _found(client, bearer(admin), "QUOKKA") == ["Question three"]  # any case
    assert _found(client, bearer(admin), "e1042") == ["Question three"]
    assert _found(client, bearer(admin), "walrus") == []


def test_a_body_word_is_not_found_on_a_ticket_the_viewer_cannot_see(client, shared, bearer, desk):
    _, agent, colleague, _ = desk
    # v1: an AGENT reaches its own tickets only.
    assert _found(client, bearer(agent), "zebrafish") == ["Question one"]
    assert _found(client, bearer(colleague), "zebrafish") == ["Question two"]
    assert _found(client, bearer(agent), "quokka") == []
    # With AGENTS_SEE_UNASSIGNED, the pile too, still not a colleague's ticket.
    assert _found(shared, bearer(agent), "quokka") == ["Question three"]
    assert _found(shared, bearer(agent), "zebrafish") == ["Question one"]


def test_an_internal_note_is_searched_for_staff(client, bearer, desk):
    admin, agent, colleague, _ = desk
    assert _found(client, bearer(admin), "billing") == ["Question four"]
    assert _found(client, bearer(agent), "legacy plan") == ["Question four"]
    assert _found(client, bearer(colleague), "billing") == []  # not the colleague's ticket


def test_several_words_must_all_be_in_one_message(client, bearer, db, desk):
    admin, *_ = desk
    assert _found(client, bearer(admin), "zebrafish importer") == ["Question one"]
    assert _found(client, bearer(admin), "importer zebrafish") == ["Question one"]  # any order
    assert _found(client, bearer(admin), "zebrafish export") == ["Question two"]
    assert _found(client, bearer(admin), "zebrafish quokka") == []
    # ... in the same message, not one word per message of the ticket.
    with db.transaction() as conn:
        ticket = conn.execute("SELECT id FROM tickets WHERE subject = 'Question three'").fetchone()
        make_message(conn, ticket[0], body="Any news about the walrus?")
    assert _found(client, bearer(admin), "quokka walrus") == []


def test_subject_and_body_matches_are_one_list_without_duplicates(client, bearer, db, desk):
    admin, *_ = desk
    with db.transaction() as conn:
        both = make_ticket(conn, subject="Zebrafish importer fails")
        make_message(conn, both["id"], body="The zebrafish importer fails, see subject.")
        make_message(conn, both["id"], body="Still zebrafish trouble.")
    page = client.get("/api/tickets?q=zebrafish", headers=bearer(admin)).json
    assert [i["subject"] for i in page["items"]] == [
        "Zebrafish importer fails",  # newest first, across both ways of matching
        "Question two",
        "Question one",
    ]
    assert (page["total"], page["total_capped"]) == (3, False)


def test_a_body_search_counts_only_so_far(client, bearer, db, make_staff):
    from supportdesk.tickets.search import TEXT_TOTAL_CAP

    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        for _ in range(TEXT_TOTAL_CAP + 2):
            ticket = make_ticket(conn, subject="Something")
            make_message(conn, ticket["id"], body="the capybara is back")
    page = client.get("/api/tickets?q=capybara&per_page=10", headers=bearer(admin)).json
    assert (page["total"], page["total_capped"]) == (TEXT_TOTAL_CAP, True)
    assert len(page["items"]) == 10


@pytest.mark.parametrize(
    "q",
    [
        "zebrafish & !",
        "zebrafish | quokka",
        "!zebrafish",
        "zebrafish:*",
        "'zebrafish'",
        '"zebrafish',
        "zebrafish)",
        "(zebrafish",
        "zebra<->fish",
        "\\zebrafish",
        "zebrafish --",
        "zebrafish\u00a0importer",
        "ünïcödé wörds",
        "日本語のテキスト",
        "a!",
        "x" * 200,
        "1 & 2",
        "zebrafish" + " " * 50 + "importer",
    ],
)
def test_odd_input_never_fails(client, bearer, desk, q):
    admin, *_ = desk
    resp = client.get(f"/api/tickets?q={quote(q)}", headers=bearer(admin), expect_errors=True)
    assert resp.status_int in (200, 422), resp.text
    if "zebrafish" in q and resp.status_int == 200 and "quokka" not in q:
        assert "Question one" in [i["subject"] for i in resp.json["items"]] or "<->" in q


# --- requester= ------------------------------------------------------------------------------


@pytest.fixture
def requesters(db, make_staff):
    agent = make_staff("AGENT")
    now = datetime.now(UTC)
    with db.transaction() as conn:
        who = {"requester_email": "Dana@Example.org", "requester_name": "Dana"}
        old = make_ticket(conn, subject="Old one", status="CLOSED", now=now - timedelta(days=3))
        dana = [
            make_ticket(conn, subject="First", now=now - timedelta(hours=5), **who),
            make_ticket(
                conn,
                subject="Second",
                status="RESOLVED",
                now=now - timedelta(hours=4),
                assigned_to=agent["id"],
                **who,
            ),
            make_ticket(conn, subject="Third zebrafish", now=now - timedelta(hours=3), **who),
        ]
        make_message(conn, dana[0]["id"], body="zebrafish everywhere")
    return agent, old, dana


def test_requester_filters_exactly_and_with_the_other_filters(
    client, bearer, make_staff, requesters
):
    admin = make_staff("ADMIN")
    agent, _, _ = requesters

    def subjects(query: str, who=admin) -> list[str]:
        resp = client.get(f"/api/tickets?{query}", headers=bearer(who))
        assert resp.status_int == 200, resp.text
        return [i["subject"] for i in resp.json["items"]]

    assert subjects("requester=dana@example.org") == ["Third zebrafish", "Second", "First"]
    assert subjects("requester=DANA%40EXAMPLE.ORG") == ["Third zebrafish", "Second", "First"]
    assert subjects("requester=ana@example.org") == []  # exact, not a substring
    assert subjects("requester=dana@example.org&status=RESOLVED") == ["Second"]
    assert subjects("requester=dana@example.org&q=zebrafish") == ["Third zebrafish", "First"]
    assert subjects("requester=dana@example.org", who=agent) == ["Second"]  # its own only


@pytest.mark.parametrize(
    "value", ["dana", "dana@", "@example.org", "dana@example", "a b@example.org", "x\x00@e.org"]
)
def test_requester_must_be_an_address(client, bearer, make_staff, value):
    admin = make_staff("ADMIN")
    resp = client.get(
        f"/api/tickets?requester={quote(value)}", headers=bearer(admin), expect_errors=True
    )
    assert resp.status_int == 422, resp.text
    assert "requester" in resp.json["error"]["details"], resp.json


# --- the ticket page: the requester's other tickets ------------------------------------------


def _browser(app, email: str) -> webtest.TestApp:
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    form = browser.get("/login").forms[0]
    form["email"], form["password"] = email, STAFF_PASSWORD
    form.submit()
    return browser


def _page_others(app, email: str, pid: str):
    page = _browser(app, email).get(f"/tickets/{pid}")
    return page.html.find("aside", class_="requester-tickets")


def test_the_ticket_page_lists_the_requesters_other_visible_tickets(
    app, settings, db, redis_client, make_staff, requesters
):
    admin = make_staff("ADMIN")
    agent, _, dana = requesters
    others = _page_others(app, admin["email"], dana[0]["pid"])
    links = [a["href"] for a in others.find_all("a")]
    assert links == [f"/tickets/{dana[2]['pid']}", f"/tickets/{dana[1]['pid']}"]
    assert "Resolved" in others.text
    assert "Third zebrafish" in others.text
    assert "more" not in others.text

    # An AGENT sees its own ticket of hers (with the pile: the unassigned ones as well).
    agent_view = _page_others(app, agent["email"], dana[1]["pid"])
    assert agent_view.find_all("a") == []
    assert "None." in agent_view.text
    on = settings.replace(agents_see_unassigned=True)
    shared = shared_app(on, db)
    agent_view = _page_others(shared, agent["email"], dana[1]["pid"])
    assert [a["href"] for a in agent_view.find_all("a")] == [
        f"/tickets/{dana[2]['pid']}",
        f"/tickets/{dana[0]['pid']}",
    ]


def test_many_other_tickets_link_to_the_list_filtered_by_requester(app, db, make_staff):
    admin = make_staff("ADMIN")
    with db.transaction() as conn:
        who = {"requester_email": "eve@example.org", "requester_name": "Eve"}
        tickets = [make_ticket(conn, subject=f"Eve {n}", **who) for n in range(9)]
    others = _page_others(app, admin["email"], tickets[0]["pid"])
    links = [a["href"] for a in others.find_all("a")]
    assert len(links) == 6  # five tickets and "and 3 more"
    assert links[-1] == "/tickets?requester=eve%40example.org"
    assert "and 3 more" in others.text
    # The list that link opens: her nine tickets, and the filter kept by the form.
    listed = _browser(app, admin["email"]).get(links[-1])
    shown = [a.text for a in listed.html.select("td.ticket-number a")]
    assert sorted(shown) == sorted(t["pid"] for t in tickets)
    assert listed.html.find("input", {"name": "requester"})["value"] == "eve@example.org"


def test_any_white_space_between_words_is_one_space():
    """A no-break space pasted between words separates them whatever the server's locale
    (embedded PostgreSQL's C locale keeps U+00A0 inside a word)."""
    search = Search.of("zebrafish\u00a0importer\t\u2003 tray ", datetime.now(UTC))
    assert search is not None
    assert search.words == "zebrafish importer tray"
    assert search.contains == "%zebrafish importer tray%"
