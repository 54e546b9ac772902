"""The webhook's sender verdicts: the JSON form's `dmarc` field, a raw message's trusted
Authentication-Results; and the verdict in the thread API (DESIGN.md section 10)."""

from __future__ import annotations

import pytest
import webtest

from tests.conftest import shared_app
from tests.webhook import post_json, post_raw, rows

PROVIDER = "mx.provider.example"


def reply_json(world: dict, **over) -> dict:
    return {
        "from": "Cleo Customer <cleo@example.org>",
        "to": "support@example.com",
        "subject": f"Re: [#{world['{PID}']}] The printer jams",
        "text": "It jams again.",
        "message_id": "<reply.1@example.org>",
        "in_reply_to": world["{ACK_ID}"],
    } | over


def reply_raw(world: dict, *results: str) -> bytes:
    headers = "".join(f"Authentication-Results: {r}\r\n" for r in results)
    return (
        f"{headers}From: Cleo Customer <cleo@example.org>\r\nTo: support@example.com\r\n"
        f"Subject: Re: The printer jams\r\nMessage-ID: <reply.1@example.org>\r\n"
        f"In-Reply-To: {world['{ACK_ID}']}\r\n\r\nIt jams again.\r\n"
    ).encode()


def stored(db) -> dict:
    [message] = rows(
        db,
        "SELECT m.sender_auth::text, t.pid FROM ticket_messages m "
        "JOIN tickets t ON t.id = m.ticket_id WHERE m.email_message_id = %s",
        "<reply.1@example.org>",
    )
    return message


def status(db, pid: str) -> str:
    return rows(db, "SELECT status::text FROM tickets WHERE pid = %s", pid)[0]["status"]


def test_a_dmarc_fail_reply_opens_a_new_ticket_and_reopens_nothing(api, db, world):
    result = post_json(api, reply_json(world, dmarc="fail"), status=201).json
    assert result["outcome"] == "created"
    assert result["ticket"] != world["{PID}"]
    assert result["acknowledged"] is False
    assert stored(db) == {"sender_auth": "fail", "pid": result["ticket"]}
    assert status(db, world["{PID}"]) == "RESOLVED"
    assert rows(db, "SELECT follows_up_id FROM tickets WHERE pid = %s", result["ticket"]) == [
        {"follows_up_id": None}
    ]


def test_a_dmarc_pass_reply_threads_and_reopens(api, db, world):
    result = post_json(api, reply_json(world, dmarc="PASS"), status=201).json
    assert (result["outcome"], result["ticket"]) == ("threaded", world["{PID}"])
    assert stored(db) == {"sender_auth": "pass", "pid": world["{PID}"]}
    assert status(db, world["{PID}"]) == "OPEN"


@pytest.mark.parametrize("dmarc", [None, "none", "temperror", "permerror"])
def test_no_verdict_threads_as_before(api, db, world, dmarc):
    payload = reply_json(world) if dmarc is None else reply_json(world, dmarc=dmarc)
    result = post_json(api, payload, status=201).json
    assert result["outcome"] == "threaded"
    assert stored(db)["sender_auth"] == "none"


@pytest.mark.parametrize("dmarc", ["maybe", 1, ["pass"], ""])
def test_a_dmarc_field_that_is_no_result_is_a_422_naming_it(api, db, world, dmarc):
    resp = post_json(api, reply_json(world, dmarc=dmarc), status=422)
    assert "dmarc" in resp.json["error"]["details"], resp.json
    assert resp.json["error"]["request_id"]
    assert rows(db, "SELECT id FROM ticket_messages WHERE email_message_id IS NOT NULL") == []


@pytest.fixture
def trusting_api(inbound_settings, db, redis_client) -> webtest.TestApp:
    settings = inbound_settings.replace(inbound_trusted_authserv_ids=(PROVIDER,))
    return webtest.TestApp(shared_app(settings, db))


@pytest.mark.parametrize(
    ("results", "verdict", "threads"),
    [
        pytest.param([f"{PROVIDER}; dmarc=pass header.from=example.org"], "pass", True, id="pass"),
        pytest.param([f"{PROVIDER}; dmarc=fail header.from=example.org"], "fail", False, id="fail"),
        pytest.param(
            [
                f"{PROVIDER}; dmarc=fail header.from=example.org",
                f"{PROVIDER}; dmarc=pass header.from=example.org",
            ],
            "fail",
            False,
            id="forged-pass-below",
        ),
        pytest.param(
            ["mx.evil.example; dmarc=fail header.from=example.org"], "none", True, id="untrusted"
        ),
        pytest.param([], "none", True, id="no-header"),
    ],
)
def test_a_raw_message_is_judged_by_the_trusted_authentication_results(
    trusting_api, db, world, results, verdict, threads
):
    result = post_raw(trusting_api, reply_raw(world, *results), status=201).json
    assert stored(db)["sender_auth"] == verdict
    assert (result["ticket"] == world["{PID}"]) is threads
    assert status(db, world["{PID}"]) == ("OPEN" if threads else "RESOLVED")


def test_without_trusted_ids_a_raw_message_is_none(api, db, world):
    raw = reply_raw(world, f"{PROVIDER}; dmarc=fail header.from=example.org")
    assert post_raw(api, raw, status=201).json["outcome"] == "threaded"
    assert stored(db)["sender_auth"] == "none"


def test_the_thread_api_gives_each_messages_verdict(api, db, world, bearer):
    post_json(api, reply_json(world, dmarc="pass"), status=201)
    pid = post_json(
        api,
        reply_json(world, dmarc="fail", message_id="<forged.1@example.org>"),
        status=201,
    ).json["ticket"]
    headers = bearer(world["bo"])
    thread = api.get(f"/api/tickets/{world['{PID}']}/messages", headers=headers).json
    assert [m["sender_auth"] for m in thread["items"]] == ["none", "pass"]
    admin_headers = bearer(rows(db, "SELECT * FROM users WHERE role = 'ADMIN'")[0])
    forged = api.get(f"/api/tickets/{pid}/messages", headers=admin_headers).json
    assert [m["sender_auth"] for m in forged["items"]] == ["fail"]


def test_the_openapi_document_carries_the_verdicts(api):
    schemas = api.get("/api/openapi.json").json["components"]["schemas"]
    assert schemas["Message"]["properties"]["sender_auth"]["enum"] == ["pass", "fail", "none"]
    assert "sender_auth" in schemas["Message"]["required"]
    dmarc = schemas["InboundEmail"]["properties"]["dmarc"]
    assert dmarc["enum"] == ["pass", "fail", "none", "temperror", "permerror"]
    assert "DMARC" in dmarc["description"]
