"""Forwarding in (DESIGN.md section 11): Bo (staff) forwards Cleo's email to the desk, and the
ticket is Cleo's, with Bo's words as an internal note; only when Bo proves who he is."""

from __future__ import annotations

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.web.services import build_services
from tests.conftest import shared_app
from tests.mail import forwards
from tests.mail.forwards import FIXTURES, NOTE, ORIGINAL, WITH_CC, Fixture, forward
from tests.webhook import post_json, post_raw, rows

PROVIDER = "mx.provider.example"
PASSED = f"Authentication-Results: {PROVIDER}; dmarc=pass header.from=example.com\n"
FAILED = f"Authentication-Results: {PROVIDER}; dmarc=fail header.from=example.com\n"
GMAIL = next(f for f in FIXTURES if f.name == "gmail")
ATTACHED = next(f for f in FIXTURES if f.name == "attached-rfc822")


@pytest.fixture
def trusting_api(inbound_settings, db, redis_client) -> webtest.TestApp:
    settings = inbound_settings.replace(inbound_trusted_authserv_ids=(PROVIDER,))
    return webtest.TestApp(shared_app(settings, db))


@pytest.fixture
def bo(make_staff):
    return make_staff("AGENT", name="Bo Agent", email="bo@example.com")


def ticket_of(db, pid: str) -> dict:
    [ticket] = rows(
        db,
        "SELECT id, subject, requester_email, requester_name, channel::text FROM tickets "
        "WHERE pid = %s",
        pid,
    )
    return ticket


def thread(db, ticket_id: int) -> list[dict]:
    return rows(
        db,
        "SELECT m.author::text, m.visibility::text, m.channel::text, m.body, m.author_email, "
        "m.email_message_id, u.email AS author_user FROM ticket_messages m "
        "LEFT JOIN users u ON u.id = m.author_user_id WHERE m.ticket_id = %s ORDER BY m.id",
        ticket_id,
    )


def emails_to(db, address: str) -> list[dict]:
    return rows(db, "SELECT kind::text FROM email_outbox WHERE to_address = %s", address)


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_a_verified_staff_forward_opens_the_customers_ticket_with_a_note(
    trusting_api, db, bo, fixture: Fixture
):
    result = post_raw(trusting_api, forward(fixture, on_top=PASSED), status=201).json
    assert (result["outcome"], result["acknowledged"]) == ("created", False)
    ticket = ticket_of(db, result["ticket"])
    assert ticket | {"id": 0} == {
        "id": 0,
        "subject": "The printer jams",
        "requester_email": "cleo@example.org",
        "requester_name": "Cleo Customer",
        "channel": "EMAIL",
    }
    first, note = thread(db, ticket["id"])
    assert (first["author"], first["visibility"], first["channel"]) == (
        "CUSTOMER",
        "PUBLIC",
        "EMAIL",
    )
    assert first["author_email"] == "cleo@example.org"
    assert ORIGINAL in first["body"]
    assert NOTE not in first["body"]
    assert first["email_message_id"] == "<forward.1@example.com>"
    assert (note["author"], note["visibility"], note["author_user"]) == (
        "STAFF",
        "INTERNAL",
        "bo@example.com",
    )
    assert note["body"] == NOTE
    assert emails_to(db, "cleo@example.org") == []  # an agent forwarded it: no acknowledgement
    participants = rows(
        db, "SELECT email FROM ticket_participants WHERE ticket_id = %s", ticket["id"]
    )
    # The original's Cc, never the forwarder (staff) nor our own address.
    expected = [{"email": "dan@example.org"}] if fixture.name in WITH_CC else []
    assert participants == expected


def test_the_files_of_an_attached_original_come_with_its_text(trusting_api, db, bo):
    result = post_raw(trusting_api, forward(ATTACHED, on_top=PASSED), status=201).json
    ticket = ticket_of(db, result["ticket"])
    files = rows(
        db,
        "SELECT a.filename, m.author::text FROM attachments a "
        "JOIN ticket_messages m ON m.id = a.message_id WHERE a.ticket_id = %s",
        ticket["id"],
    )
    assert files == [{"filename": "jam.pdf", "author": "CUSTOMER"}]


def test_the_same_forward_twice_is_stored_once(trusting_api, db, bo):
    raw = forward(GMAIL, on_top=PASSED)
    first = post_raw(trusting_api, raw, status=201).json
    again = post_raw(trusting_api, raw, status=200).json
    assert (again["outcome"], again["ticket"]) == ("duplicate", first["ticket"])
    assert len(rows(db, "SELECT id FROM tickets")) == 1


def test_the_timeline_says_who_forwarded_it(trusting_api, db, bo, make_staff, bearer):
    admin = make_staff("ADMIN", email="ana@example.com")
    pid = post_raw(trusting_api, forward(GMAIL, on_top=PASSED), status=201).json["ticket"]
    events = trusting_api.get(f"/api/tickets/{pid}/events", headers=bearer(admin)).json
    kinds = [(e["type"], (e["actor"] or {}).get("name")) for e in events["items"]]
    assert ("CREATED", "Bo Agent") in kinds
    assert ("NOTE_ADDED", "Bo Agent") in kinds


@pytest.mark.parametrize("verdict", ["", FAILED], ids=["none", "fail"])
def test_an_unverified_staff_forward_is_an_ordinary_ticket_from_the_forwarder(
    trusting_api, db, bo, verdict
):
    result = post_raw(trusting_api, forward(GMAIL, on_top=verdict), status=201).json
    ticket = ticket_of(db, result["ticket"])
    assert ticket["requester_email"] == "bo@example.com"
    assert ticket["subject"] == "Fwd: The printer jams"
    [message] = thread(db, ticket["id"])
    assert (message["author"], message["visibility"]) == ("CUSTOMER", "PUBLIC")
    assert NOTE in message["body"]


def test_a_verified_forward_from_someone_not_staff_is_an_ordinary_ticket(trusting_api, db, bo):
    raw = forward(
        GMAIL,
        sender="Eve Outsider <eve@example.com>",
        on_top=PASSED,
        message_id="<eve.1@example.com>",
    )
    ticket = ticket_of(db, post_raw(trusting_api, raw, status=201).json["ticket"])
    assert ticket["requester_email"] == "eve@example.com"
    assert len(thread(db, ticket["id"])) == 1


def test_a_deactivated_staff_member_is_not_trusted(trusting_api, db, make_staff):
    make_staff("AGENT", name="Bo Agent", email="bo@example.com", is_active=False)
    result = post_raw(trusting_api, forward(GMAIL, on_top=PASSED), status=201).json
    assert ticket_of(db, result["ticket"])["requester_email"] == "bo@example.com"


def test_a_forward_of_a_colleagues_email_is_an_ordinary_one(trusting_api, db, bo, make_staff):
    make_staff("AGENT", name="Cleo Colleague", email="cleo@example.org")
    result = post_raw(trusting_api, forward(GMAIL, on_top=PASSED), status=201).json
    assert ticket_of(db, result["ticket"])["requester_email"] == "bo@example.com"


def test_a_forward_of_our_own_email_is_an_ordinary_one(trusting_api, db, bo):
    ours = "Desk <support@example.com>"
    template = GMAIL.template.replace("Cleo Customer <cleo@example.org>", ours)
    raw = forward(Fixture("ours", template), on_top=PASSED)
    result = post_raw(trusting_api, raw, status=201).json
    assert ticket_of(db, result["ticket"])["requester_email"] == "bo@example.com"


def test_an_outlook_reply_is_no_forward(trusting_api, db, bo):
    """Outlook writes the same block above the history of a reply: only a forward's subject
    makes it one."""
    outlook = next(f for f in FIXTURES if f.name == "outlook-new")
    raw = forward(Fixture("reply", outlook.template.replace("FW:", "RE:")), on_top=PASSED)
    result = post_raw(trusting_api, raw, status=201).json
    assert ticket_of(db, result["ticket"])["requester_email"] == "bo@example.com"


def test_a_forward_to_a_staff_token_is_trusted_without_sender_authentication(
    api, db, world, inbound_settings
):
    """Bo answers a notice of ticket 1 (its STAFF token in the address), forwarding a new
    customer's email: the token proves it is Bo, and the customer gets a ticket of their own."""
    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    token_address = services.composer.tokens.plus_address(
        "support@example.com", world["{PID}"], "STAFF"
    )
    template = GMAIL.template.replace("cleo@example.org", "finn@example.net").replace(
        "Cleo Customer", "Finn Customer"
    )
    raw = forward(Fixture("token", template), to=token_address)
    result = post_raw(api, raw, status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != world["{PID}"]
    ticket = ticket_of(db, result["ticket"])
    assert (ticket["requester_email"], ticket["requester_name"]) == (
        "finn@example.net",
        "Finn Customer",
    )
    assert [m["visibility"] for m in thread(db, ticket["id"])] == ["PUBLIC", "INTERNAL"]
    count = "SELECT count(*) AS n FROM ticket_messages WHERE ticket_id = %s"
    assert rows(db, count, world["ticket"]["id"]) == [
        {"n": 1}
    ]  # nothing was added to the ticket the token names


def test_a_customer_token_proves_nothing(api, db, world):
    """Every customer holds the CUSTOMER tokens of their own ticket: no staff proof."""
    raw = forward(GMAIL, to=world["{TOKEN_ADDR}"])
    result = post_raw(api, raw, status=201).json
    assert ticket_of(db, result["ticket"])["requester_email"] == "bo@example.com"


def test_a_kept_forward_is_the_ticket_of_whom_the_admin_names(api, db, bo, make_staff, bearer):
    """The quarantine's ADMIN names the requester: a forward kept there (no sender could
    be read) becomes that person's ticket, whatever verdict the provider gave."""
    payload = {
        "from": "Bo Agent",  # no address: kept in the quarantine
        "to": "support@example.com",
        "subject": "Fwd: The printer jams",
        "text": forwards.GMAIL_PLAIN,
        "message_id": "<kept.forward@example.com>",
        "dmarc": "pass",
    }
    kept = post_json(api, payload, status=202).json["quarantine"]["id"]
    admin = bearer(make_staff("ADMIN", email="ana@example.com"))
    body = {"requester_email": "bo@example.com"}
    pid = api.post_json(f"/api/quarantine/{kept}/ticket", body, headers=admin).json["ticket"]
    assert ticket_of(db, pid)["requester_email"] == "bo@example.com"
