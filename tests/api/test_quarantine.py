"""No mail refused for its content (issue 20, DESIGN.md section 6): a sender that cannot be
read falls back to Reply-To, Sender, Return-Path and a lenient reading; an email with no
usable address at all is kept in the quarantine (a 2xx), which ADMINs list, open a ticket
from, or discard."""

from __future__ import annotations

import base64
import threading
import uuid

import pytest
import webtest

from tests.conftest import shared_app
from tests.images import png
from tests.mail.senders import SENDERS, Sender
from tests.webhook import post_json, post_raw, rows

READ = [s for s in SENDERS if s.requester]
KEPT = [s for s in SENDERS if not s.requester]


def _message_id() -> str:
    return f"<{uuid.uuid4().hex}@mail.example.org>"


def _tickets(db) -> list[dict]:
    return rows(
        db,
        "SELECT t.pid, t.requester_email, m.author_email, m.body FROM tickets t "
        "JOIN ticket_messages m ON m.ticket_id = t.id ORDER BY t.id",
    )


def _kept(db) -> list[dict]:
    return rows(db, "SELECT * FROM quarantine ORDER BY id")


@pytest.mark.parametrize("sender", READ, ids=[s.name for s in READ])
@pytest.mark.parametrize("form", ["raw", "json"])
def test_a_sender_that_can_be_read_somewhere_opens_a_ticket(api, db, sender: Sender, form):
    message_id = _message_id()
    if form == "raw":
        resp = post_raw(api, sender.raw(message_id), status=201)
    else:
        resp = post_json(api, sender.payload(message_id), status=201)
    assert resp.json["outcome"] == "created"
    [ticket] = _tickets(db)
    assert ticket["pid"] == resp.json["ticket"]
    assert (ticket["requester_email"], ticket["author_email"]) == (sender.requester,) * 2
    assert ticket["body"] == "Please call me back about my order."
    assert _kept(db) == []
    # The customer is told the ticket number, also at an intranet address.
    [ack] = rows(db, "SELECT to_address FROM email_outbox WHERE kind = 'ACKNOWLEDGEMENT'")
    assert ack["to_address"] == sender.requester


@pytest.mark.parametrize("sender", KEPT, ids=[s.name for s in KEPT])
@pytest.mark.parametrize("form", ["raw", "json"])
def test_an_email_with_no_usable_address_is_kept_and_answered_2xx(api, db, sender: Sender, form):
    message_id = _message_id()
    if form == "raw":
        raw = sender.raw(message_id)
        resp = post_raw(api, raw, status=202)
        body, raw_type = raw, "message/rfc822"
    else:
        resp = post_json(api, sender.payload(message_id), status=202)
        body, raw_type = None, "application/json"
    [kept] = _kept(db)
    assert resp.json == {
        "outcome": "quarantined",
        "ticket": None,
        "message_id": None,
        "acknowledged": False,
        "automatic": None,
        "quarantine": {"id": kept["id"], "reason": kept["reason"]},
    }
    assert "No sender address" in kept["reason"]
    assert kept["email_message_id"] == message_id
    assert kept["subject"] == "Where is my order?"
    assert kept["from_header"] == ("!!! ??? ###" if "garbage" in sender.name else "")
    assert kept["raw_type"] == raw_type
    assert body is None or bytes(kept["raw"]) == body
    assert _tickets(db) == []
    assert rows(db, "SELECT count(*) AS n FROM email_outbox") == [{"n": 0}]


@pytest.mark.parametrize("form", ["raw", "json"])
def test_the_same_kept_email_twice_is_kept_once(api, db, form):
    sender = KEPT[0]
    message_id = _message_id()
    post = (
        (lambda: post_raw(api, sender.raw(message_id), status="2*"))
        if form == "raw"
        else (lambda: post_json(api, sender.payload(message_id), status="2*"))
    )
    first, again = post(), post()
    assert (first.status_int, first.json["outcome"]) == (202, "quarantined")
    assert (again.status_int, again.json["outcome"]) == (200, "duplicate")
    assert again.json["quarantine"] == first.json["quarantine"]
    assert len(_kept(db)) == 1


def test_the_same_kept_email_twice_at_once_is_kept_once(inbound_settings, db):
    """Two posts in parallel (a provider retrying while the first still runs): one waits
    for the other's row and answers that it is kept already."""
    raw = KEPT[0].raw(_message_id())
    app = shared_app(inbound_settings, db)
    results, barrier = [], threading.Barrier(2)

    def post() -> None:
        barrier.wait()
        results.append(post_raw(webtest.TestApp(app), raw, status="2*"))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_int for r in results) == [200, 202]
    assert results[0].json["quarantine"] == results[1].json["quarantine"]
    assert len(_kept(db)) == 1


def test_a_message_id_already_in_the_quarantine_opens_no_ticket_by_another_way(api, db):
    """The same email, read once without a sender and once with one (a provider's JSON
    without `from`, then the raw message), is one email: kept once, never also a ticket."""
    message_id = _message_id()
    post_json(api, KEPT[0].payload(message_id), status=202)
    again = post_raw(api, READ[0].raw(message_id), status=200).json
    assert (again["outcome"], again["ticket"]) == ("duplicate", None)
    assert _tickets(db) == []


def test_a_hostile_from_with_nothing_else_is_kept_not_refused(api, db):
    raw = b"From: " + b"(" * 20000 + b"\r\nSubject: deep\r\nMessage-ID: <deep@x.example>\r\n\r\n"
    assert post_raw(api, raw, status=202).json["outcome"] == "quarantined"
    [kept] = _kept(db)
    assert bytes(kept["raw"]) == raw


# --- the ADMIN's API ---------------------------------------------------------------------


@pytest.fixture
def admin(make_staff, bearer):
    return bearer(make_staff("ADMIN"))


def _keep(api, db, sender=KEPT[0], **raw_args) -> int:
    resp = post_raw(api, sender.raw(_message_id(), **raw_args), status=202)
    return resp.json["quarantine"]["id"]


def test_the_list_is_newest_first_and_paged(api, db, admin):
    ids = [_keep(api, db) for _ in range(3)]
    listed = api.get("/api/quarantine?per_page=2", headers=admin).json
    assert [item["id"] for item in listed["items"]] == ids[::-1][:2]
    assert (listed["page"], listed["per_page"], listed["total"], listed["total_capped"]) == (
        1,
        2,
        3,
        False,
    )
    [item] = api.get("/api/quarantine?per_page=2&page=2", headers=admin).json["items"]
    assert set(item) == {"id", "received_at", "from", "subject", "reason"}
    assert (item["id"], item["from"]) == (ids[0], "!!! ??? ###")
    assert item["subject"] == "Where is my order?"
    assert "No sender address" in item["reason"]


def test_a_bad_page_is_a_422(api, admin):
    resp = api.get("/api/quarantine?per_page=0", headers=admin, status=422)
    assert set(resp.json["error"]["details"]) == {"per_page"}


def test_a_ticket_opened_from_a_kept_email_keeps_its_text_and_files(api, db, admin):
    """Through the same inbound path, as if the ADMIN's address had sent it: the text, the
    files and the Message-ID are the email's; the requester gets the acknowledgement; the
    email leaves the quarantine."""
    image = base64.b64encode(png(4, 3)).decode()
    message_id = _message_id()
    raw = (
        "From: !!! ??? ###\r\nTo: support@example.com\r\nSubject: Broken screen\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "The screen is cracked. Grüße, Jörg\r\n"
        "--b\r\nContent-Type: image/png\r\n"
        'Content-Disposition: attachment; filename="screen.png"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{image}\r\n--b--\r\n"
    ).encode()
    kept_id = post_raw(api, raw, status=202).json["quarantine"]["id"]
    resp = api.post_json(
        f"/api/quarantine/{kept_id}/ticket",
        {"requester_email": "Jorg@Example.org"},
        headers=admin,
        status=201,
    ).json
    assert (resp["outcome"], resp["quarantine"]) == ("created", None)
    [ticket] = _tickets(db)
    assert ticket["pid"] == resp["ticket"]
    assert ticket["requester_email"] == ticket["author_email"] == "jorg@example.org"
    assert "The screen is cracked. Grüße, Jörg" in ticket["body"]
    [message] = rows(db, "SELECT email_message_id FROM ticket_messages")
    assert message["email_message_id"] == message_id
    files = rows(db, "SELECT filename, content_type FROM attachments")
    assert files == [{"filename": "screen.png", "content_type": "image/png"}]
    [ack] = rows(db, "SELECT to_address FROM email_outbox WHERE kind = 'ACKNOWLEDGEMENT'")
    assert ack["to_address"] == "jorg@example.org"
    assert _kept(db) == []
    # The email again, by any way in, is the same email: stored once.
    assert post_raw(api, raw, status=200).json["ticket"] == ticket["pid"]


def test_a_ticket_opened_from_a_kept_json_email(api, db, admin):
    message_id = _message_id()
    payload = KEPT[0].payload(message_id) | {"html": "<p>caf&eacute;</p>", "text": ""}
    post_json(api, payload, status=202)
    [kept] = _kept(db)
    api.post_json(
        f"/api/quarantine/{kept['id']}/ticket",
        {"requester_email": "cleo@example.org"},
        headers=admin,
        status=201,
    )
    [ticket] = _tickets(db)
    assert (ticket["requester_email"], ticket["body"]) == ("cleo@example.org", "café")


def test_a_ticket_from_a_kept_email_threads_like_any_email_from_that_address(api, db, admin, world):
    """Named as the requester of the ticket its email answers, it joins that ticket."""
    raw = (
        "To: support@example.com\r\nSubject: Re: The printer jams\r\n"
        f"Message-ID: {_message_id()}\r\nIn-Reply-To: {world['{ACK_ID}']}\r\n\r\n"
        "It jams again.\r\n"
    ).encode()
    kept_id = post_raw(api, raw, status=202).json["quarantine"]["id"]
    resp = api.post_json(
        f"/api/quarantine/{kept_id}/ticket",
        {"requester_email": "cleo@example.org"},
        headers=admin,
        status=201,
    ).json
    assert (resp["outcome"], resp["ticket"]) == ("threaded", world["{PID}"])


@pytest.mark.parametrize("header", ["Reply-To", "Sender", "Return-Path"])
def test_a_sender_read_from_a_fallback_header_never_joins_a_ticket(api, db, world, header):
    """No From line names the address: DMARC vouches for nothing, and these headers are
    anyone's to write, so a reply 'from' the requester this way opens its own ticket."""
    raw = (
        f"{header}: <cleo@example.org>\r\nTo: support@example.com\r\n"
        "Subject: Re: The printer jams\r\n"
        f"Message-ID: {_message_id()}\r\nIn-Reply-To: {world['{ACK_ID}']}\r\n\r\n"
        "It jams again.\r\n"
    ).encode()
    resp = post_raw(api, raw, status=201).json
    assert resp["outcome"] == "created"
    assert resp["ticket"] != world["{PID}"]


@pytest.mark.parametrize("requester", [None, "", "not an address", "root@intranet"])
def test_opening_a_ticket_needs_a_valid_requester(api, db, admin, requester):
    kept_id = _keep(api, db)
    body = {} if requester is None else {"requester_email": requester}
    resp = api.post_json(f"/api/quarantine/{kept_id}/ticket", body, headers=admin, status=422)
    assert set(resp.json["error"]["details"]) == {"requester_email"}
    assert resp.json["error"]["request_id"] == resp.headers["X-Request-ID"]
    assert len(_kept(db)) == 1
    assert _tickets(db) == []


def test_discarding_removes_it_and_a_missing_one_is_a_404(api, db, admin):
    kept_id, other = _keep(api, db), _keep(api, db)
    api.delete(f"/api/quarantine/{kept_id}", headers=admin, status=204)
    assert [k["id"] for k in _kept(db)] == [other]
    for resp in [
        api.delete(f"/api/quarantine/{kept_id}", headers=admin, status=404),
        api.post_json(
            f"/api/quarantine/{kept_id}/ticket",
            {"requester_email": "a@example.org"},
            headers=admin,
            status=404,
        ),
    ]:
        assert resp.json["error"]["code"] == "not_found"
    assert _tickets(db) == []
