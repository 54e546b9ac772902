"""Staff write first (DESIGN.md section 11): `POST /api/tickets` with `to` opens a ticket by
emailing the customer. What is stored and queued here; the email as the worker sends it,
and the customer's answer threading back, in tests/worker/test_staff_email_loop.py."""

from __future__ import annotations

import pytest
import webtest

from supportdesk.accounts.auth import TokenService
from tests.conftest import shared_app
from tests.oauthserver import insert_mailbox
from tests.webhook import rows

EMAIL = {
    "to": "Cleo Customer <Cleo@Example.org>",
    "cc": ["dan@example.net", "Eve Boss <eve@example.net>"],
    "subject": "Your order 1234 has shipped",
    "body": "Hello Cleo,\n\nyour order left our warehouse today.",
}


@pytest.fixture
def ana(make_staff):
    return make_staff("AGENT", name="Ana Agent", email="ana@example.com")


def _outbox(db) -> list[dict]:
    return rows(
        db,
        "SELECT kind::text, to_address, cc_addresses, subject, in_reply_to, reply_to, "
        "from_address, message_id, ticket_message_id, mailbox_id FROM email_outbox ORDER BY id",
    )


def test_an_agent_writes_first_and_owns_the_waiting_ticket(api, db, ana, bearer):
    resp = api.post_json("/api/tickets", EMAIL, headers=bearer(ana), status=201)
    ticket = resp.json["ticket"]
    pid = ticket["pid"]
    assert resp.headers["Location"].endswith(f"/api/tickets/{pid}")
    assert ticket["status"] == "WAITING"
    assert ticket["requester"] == {"email": "cleo@example.org", "name": "Cleo Customer"}
    assert ticket["assigned_to"] == {"id": ana["id"], "name": "Ana Agent", "email": ana["email"]}
    assert ticket["subject"] == EMAIL["subject"]
    assert ticket["mailbox_id"] is None

    # The AGENT sees what it started (it reaches only its own tickets).
    assert api.get(f"/api/tickets/{pid}", headers=bearer(ana)).json["ticket"]["pid"] == pid
    [message] = api.get(f"/api/tickets/{pid}/messages", headers=bearer(ana)).json["items"]
    assert (message["author"], message["visibility"], message["author_name"]) == (
        "STAFF",
        "PUBLIC",
        "Ana Agent",
    )
    assert message["body"] == EMAIL["body"]

    # One email, no acknowledgement: To the customer, Cc the copied people, [#PID] first.
    [email] = _outbox(db)
    assert email["kind"] == "REPLY"
    assert email["to_address"] == "cleo@example.org"
    assert email["cc_addresses"] == ["dan@example.net", "eve@example.net"]
    assert email["subject"] == f"[#{pid}] {EMAIL['subject']}"
    assert email["in_reply_to"] is None
    assert email["ticket_message_id"] == message["id"]
    assert email["reply_to"].startswith(f"support+{pid}.")
    assert pid in email["message_id"]
    assert email["from_address"] == "Support Desk <support@example.com>"

    events = api.get(f"/api/tickets/{pid}/events", headers=bearer(ana)).json["items"]
    assert [e["type"] for e in events] == [
        "CREATED",
        "ASSIGNED",
        "MESSAGE_ADDED",
        "PARTICIPANT_ADDED",
        "PARTICIPANT_ADDED",
    ]
    assert events[0]["data"]["outgoing"] is True
    assert {e["actor"]["id"] for e in events} == {ana["id"]}
    assert [e["data"]["email"] for e in events[3:]] == ["dan@example.net", "eve@example.net"]
    with db.transaction() as conn:
        people = conn.execute(
            "SELECT email, name, added_by FROM ticket_participants ORDER BY email"
        ).fetchall()
    assert people == [
        ("dan@example.net", "", ana["id"]),
        ("eve@example.net", "Eve Boss", ana["id"]),
    ]


def test_a_bare_address_is_named_by_its_local_part(api, ana, bearer):
    body = {"to": "cleo.customer@example.org", "subject": "Hi", "body": "Hello."}
    ticket = api.post_json("/api/tickets", body, headers=bearer(ana)).json["ticket"]
    assert ticket["requester"] == {"email": "cleo.customer@example.org", "name": "cleo.customer"}


def test_cc_may_be_one_text_with_commas(api, db, ana, bearer):
    body = {
        "to": "cleo@example.org",
        "cc": '"Doe, Jane" <jane@example.net>; dan@example.net, cleo@example.org',
        "subject": "Hi",
        "body": "Hello.",
    }
    api.post_json("/api/tickets", body, headers=bearer(ana), status=201)
    [email] = _outbox(db)
    # The requester is not copied on her own email.
    assert email["cc_addresses"] == ["jane@example.net", "dan@example.net"]


@pytest.mark.parametrize("cc", ["\x98", "dan@example.net, jörg@exämple.de", "ü <ü@example.net>"])
def test_a_cc_text_with_an_address_outside_ascii_is_a_422_not_a_500(api, db, ana, bearer, cc):
    """Found by schemathesis (issue 24): the text was rebuilt with formataddr, which raises
    UnicodeEncodeError on such an address."""
    resp = api.post_json("/api/tickets", EMAIL | {"cc": cc}, headers=bearer(ana), status=422)
    assert "is not an email address" in resp.json["error"]["details"]["cc"], resp.json
    assert rows(db, "SELECT id FROM tickets") == []


def test_a_name_outside_ascii_in_a_cc_text_is_kept(api, db, ana, bearer):
    body = EMAIL | {"cc": "Zoë Doe <zoe@example.net>"}
    api.post_json("/api/tickets", body, headers=bearer(ana), status=201)
    [email] = _outbox(db)
    assert email["cc_addresses"] == ["zoe@example.net"]


def test_the_email_goes_from_the_chosen_mailbox(api, db, ana, bearer):
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, auth="PASSWORD", address="sales@acme.example")
    body = EMAIL | {"mailbox_id": mailbox["id"]}
    ticket = api.post_json("/api/tickets", body, headers=bearer(ana)).json["ticket"]
    assert ticket["mailbox_id"] == mailbox["id"]
    [email] = _outbox(db)
    assert email["mailbox_id"] == mailbox["id"]
    assert email["from_address"] == "Acme Support <sales@acme.example>"
    assert email["reply_to"] == "sales@acme.example"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"to": "not an address"}, "to"),
        ({"to": "a@example.org, b@example.org"}, "to"),
        ({"to": ""}, "to"),
        ({"to": ["cleo@example.org"]}, "to"),
        ({"to": "support@example.com"}, "to"),  # the desk's own address: a loop
        ({"to": "Support <support+x@example.com>"}, "to"),
        ({"cc": ["dan@example.net", "nope"]}, "cc"),
        ({"cc": "dan@example.net, support@example.com"}, "cc"),
        ({"cc": [f"p{n}@example.net" for n in range(11)]}, "cc"),  # MAX_PARTICIPANTS is 10
        ({"cc": 7}, "cc"),
        ({"subject": ""}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"body": ""}, "body"),
        ({"mailbox_id": 999_999}, "mailbox_id"),
        ({"mailbox_id": "1"}, "mailbox_id"),
        ({"name": "Cleo"}, "name"),  # the public form's fields are not this body's
    ],
    ids=lambda v: str(v)[:40],
)
def test_a_refused_email_names_its_field_and_stores_nothing(api, db, ana, bearer, change, field):
    resp = api.post_json("/api/tickets", EMAIL | change, headers=bearer(ana), status=422)
    assert field in resp.json["error"]["details"], resp.json
    assert rows(db, "SELECT id FROM tickets") == []
    assert _outbox(db) == []


def test_an_inactive_mailbox_is_refused(api, db, ana, bearer):
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, auth="PASSWORD", is_active=False)
    body = EMAIL | {"mailbox_id": mailbox["id"]}
    resp = api.post_json("/api/tickets", body, headers=bearer(ana), status=422)
    assert resp.json["error"]["details"] == {"mailbox_id": "Choose an active mailbox."}


def test_staff_without_to_get_the_errors_of_this_body(api, ana, bearer):
    """A staff body without the form's `email` or `name` is an email to write: its
    errors name `to`, not the public form's fields."""
    resp = api.post_json("/api/tickets", {"subject": "Hi"}, headers=bearer(ana), status=422)
    assert set(resp.json["error"]["details"]) == {"to", "body"}


def test_anonymous_cannot_send_an_email(api, db):
    resp = api.post_json("/api/tickets", EMAIL, status=401)
    assert resp.json["error"]["code"] == "unauthenticated"
    # Not with the public form's fields beside it either.
    both = EMAIL | {"name": "Mallory", "email": "mallory@example.org"}
    api.post_json("/api/tickets", both, status=401)
    assert rows(db, "SELECT id FROM tickets") == []
    assert _outbox(db) == []


def test_a_cookie_without_its_csrf_token_cannot_send_an_email(api, db, ana, tokens: TokenService):
    token, _ = tokens.issue(ana)
    api.set_cookie("session", token)
    api.post_json("/api/tickets", EMAIL, status=401)
    assert _outbox(db) == []


def test_the_public_form_body_still_opens_an_acknowledged_ticket(api, db, ana, bearer):
    """Unchanged: anonymous, and staff on a customer's behalf."""
    form = {"name": "Cleo", "email": "cleo@example.org", "subject": "Jam", "body": "Tray 2."}
    for headers in ({}, bearer(ana)):
        ticket = api.post_json("/api/tickets", form, headers=headers, status=201).json["ticket"]
        assert (ticket["status"], ticket["assigned_to"]) == ("OPEN", None)
    assert [e["kind"] for e in _outbox(db)] == ["ACKNOWLEDGEMENT", "ACKNOWLEDGEMENT"]


def test_files_go_with_the_first_message(api, db, ana, bearer):
    fields = [("to", "cleo@example.org"), ("subject", "The contract"), ("body", "Attached.")]
    fields += [("cc", "dan@example.net, eve@example.net")]
    resp = api.post(
        "/api/tickets",
        fields,
        upload_files=[("attachments", "contract.pdf", b"%PDF-1.4\n%%EOF\n")],
        headers=bearer(ana),
        status=201,
    )
    pid = resp.json["ticket"]["pid"]
    [message] = api.get(f"/api/tickets/{pid}/messages", headers=bearer(ana)).json["items"]
    assert [a["filename"] for a in message["attachments"]] == ["contract.pdf"]
    [email] = rows(db, "SELECT body_text, cc_addresses, attachment_ids FROM email_outbox")
    # Attached as a MIME part, as a reply's files are (under EMAIL_ATTACHMENT_MAX_BYTES),
    # not linked in the text.
    assert email["attachment_ids"] == [message["attachments"][0]["id"]]
    assert "contract.pdf" not in email["body_text"]
    assert email["cc_addresses"] == ["dan@example.net", "eve@example.net"]


def test_files_past_the_limit_go_with_the_first_message_as_links(inbound_settings, db, ana, bearer):
    small = inbound_settings.replace(email_attachment_max_bytes=4)
    api = webtest.TestApp(shared_app(small, db))
    resp = api.post(
        "/api/tickets",
        [("to", "cleo@example.org"), ("subject", "The contract"), ("body", "Attached.")],
        upload_files=[("attachments", "contract.pdf", b"%PDF-1.4\n%%EOF\n")],
        headers=bearer(ana),
        status=201,
    )
    assert resp.json["ticket"]["pid"]
    [email] = rows(db, "SELECT body_text, attachment_ids FROM email_outbox")
    assert email["attachment_ids"] == []
    assert "contract.pdf" in email["body_text"]


def test_a_multipart_mailbox_id_is_read_as_a_number(api, db, ana, bearer):
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, auth="PASSWORD")
    fields = [("to", "cleo@example.org"), ("subject", "Hi"), ("body", "Hello.")]
    resp = api.post(
        "/api/tickets",
        [*fields, ("mailbox_id", str(mailbox["id"]))],
        upload_files=[("attachments", "note.txt", b"hello\n")],
        headers=bearer(ana),
        status=201,
    )
    assert resp.json["ticket"]["mailbox_id"] == mailbox["id"]


def test_the_document_publishes_both_bodies(api):
    document = api.get("/api/openapi.json").json
    post = document["paths"]["/api/tickets"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {
        "oneOf": [
            {"$ref": "#/components/schemas/NewTicket"},
            {"$ref": "#/components/schemas/StaffEmail"},
        ]
    }
    staff = document["components"]["schemas"]["StaffEmail"]
    assert staff["required"] == ["to", "subject", "body"]
    assert {"201", "401", "422", "429"} <= set(post["responses"])
