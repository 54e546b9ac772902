"""The original email (issue 21 part 5, DESIGN.md section 11): an HTML email's sanitized HTML
is kept by every way an email is stored, the thread says `html_available`, and
`GET /api/tickets/{pid}/messages/{id}/original` serves it to staff who may see the ticket,
as a document for a sandboxed frame."""

from __future__ import annotations

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.tickets.inputs import Assignment, NewMessage
from supportdesk.web.services import build_services
from tests.conftest import STAFF_PASSWORD
from tests.webhook import fill, post_json, post_raw, rows

HOSTILE_RECEIPT = (
    "<html><head><title>Receipt</title><style>body{background:url(http://evil.example/s)}"
    '</style><meta http-equiv="refresh" content="0;url=http://evil.example/"></head>'
    '<body onload="alert(1)"><table width="600" style="border-collapse:collapse">'
    '<tr><th align="left">Item</th><th align="right">Price</th></tr>'
    '<tr><td style="padding:8px">Toner</td><td align="right">&euro;&nbsp;49.90</td></tr>'
    "</table><script>parent.document.title='pwned'</script>"
    '<img src="http://evil.example/open.gif" alt="pixel">'
    '<a href="javascript:alert(1)">Unsubscribe</a></body></html>'
)


def _html_email(message_id: str = "<receipt.1@shop.example>", headers: str = "") -> bytes:
    return (
        "From: Shop Customer <cleo@example.org>\r\nTo: support@example.com\r\n"
        f"Subject: My receipt\r\nMessage-ID: {message_id}\r\n{headers}MIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nToner 49.90 EUR\r\n"
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{HOSTILE_RECEIPT}\r\n--b--\r\n"
    ).encode()


def _text_email(message_id: str = "<text.1@example.org>") -> bytes:
    return (
        "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Plain\r\n"
        f"Message-ID: {message_id}\r\n\r\nJust text.\r\n"
    ).encode()


def _thread(api, pid, headers) -> list[dict]:
    return api.get(f"/api/tickets/{pid}/messages", headers=headers).json["items"]


def _original(api, pid, message_id, headers, status=200):
    return api.get(
        f"/api/tickets/{pid}/messages/{message_id}/original", headers=headers, status=status
    )


def test_an_html_email_is_served_sanitized_for_a_sandboxed_frame(api, make_staff, bearer):
    pid = post_raw(api, _html_email(), status=201).json["ticket"]
    admin = bearer(make_staff("ADMIN"))
    [message] = _thread(api, pid, admin)
    assert message["html_available"] is True
    assert message["body"] == "Toner 49.90 EUR"

    resp = _original(api, pid, message["id"], admin)
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    page = resp.text
    assert page.startswith('<!doctype html><html><head><meta charset="utf-8">')
    assert '<table width="600" style="border-collapse:collapse">' in page
    assert '<td align="right">€&nbsp;49.90</td>' in page
    assert "Remote images in this email were blocked" in page
    for gone in ("<script", "pwned", "onload", "alert", "evil.example", "refresh", "url("):
        assert gone not in page, gone

    policy = resp.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox")
    assert "allow-scripts" not in policy
    assert "allow-same-origin" not in policy
    for directive in (
        "default-src 'none'",
        "img-src data:",
        "style-src 'unsafe-inline'",
        "frame-ancestors 'self'",
    ):
        assert directive in policy
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_the_html_is_stored_as_sanitized(api, db):
    post_raw(api, _html_email(), status=201)
    [row] = rows(db, "SELECT html_body, full_body FROM ticket_messages")
    assert "<script" not in row["html_body"]
    assert "Toner" in row["html_body"]


def test_a_text_only_message_has_no_original(api, make_staff, bearer):
    pid = post_raw(api, _text_email(), status=201).json["ticket"]
    admin = bearer(make_staff("ADMIN"))
    [message] = _thread(api, pid, admin)
    assert message["html_available"] is False
    resp = _original(api, pid, message["id"], admin, status=404)
    assert resp.json["error"]["code"] == "not_found"


def test_an_agent_reaches_the_original_of_its_own_tickets_only(
    api, db, redis_client, inbound_settings, make_staff, bearer
):
    pid = post_raw(api, _html_email(), status=201).json["ticket"]
    assigned, other = make_staff("AGENT"), make_staff("AGENT")
    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    services.assignment.assign(make_staff("ADMIN"), pid, Assignment(assigned["id"]))
    [message] = _thread(api, pid, bearer(assigned))
    assert "Toner" in _original(api, pid, message["id"], bearer(assigned)).text
    resp = _original(api, pid, message["id"], bearer(other), status=404)
    assert resp.json["error"]["code"] == "not_found"
    assert "Toner" not in resp.text
    assert _original(api, pid, message["id"], {}, status=401).json["error"]["code"]


def test_a_message_of_another_ticket_is_not_found_under_this_one(api, make_staff, bearer):
    html_pid = post_raw(api, _html_email(), status=201).json["ticket"]
    other_pid = post_raw(api, _text_email(), status=201).json["ticket"]
    admin = bearer(make_staff("ADMIN"))
    [message] = _thread(api, html_pid, admin)
    _original(api, other_pid, message["id"], admin, status=404)
    _original(api, html_pid, message["id"] + 1000, admin, status=404)


def test_a_customer_reply_in_html_keeps_its_html(api, world, make_staff, bearer):
    """The reply path (CustomerReplies.add), threaded by In-Reply-To."""
    raw = fill(_html_email("<reply.1@example.org>", "In-Reply-To: {ACK_ID}\r\n"), world)
    resp = post_raw(api, raw, status=201)
    assert resp.json["outcome"] == "threaded"
    admin = bearer(make_staff("ADMIN"))
    reply = _thread(api, world["{PID}"], admin)[-1]
    assert reply["html_available"] is True
    assert "Toner" in _original(api, world["{PID}"], reply["id"], admin).text


def test_a_staff_message_by_email_keeps_its_html(api, db, inbound_settings, make_staff, bearer):
    """The staff path (MessageService.post), as the inbound service calls it for a staff
    member answering from their inbox."""
    pid = post_raw(api, _text_email(), status=201).json["ticket"]
    admin = make_staff("ADMIN")
    services = build_services(inbound_settings, db, make_redis(inbound_settings))
    new = NewMessage("Sent.", email_message_id="<staff.1@example.com>", html_body="<p>Sent.</p>")
    posted = services.messages.post(admin, pid, new, channel="EMAIL")
    stored = rows(db, "SELECT html_body FROM ticket_messages WHERE id = %s", posted.message["id"])
    assert stored == [{"html_body": "<p>Sent.</p>"}]
    assert _thread(api, pid, bearer(admin))[-1]["html_available"] is True
    assert "<p>Sent.</p>" in _original(api, pid, posted.message["id"], bearer(admin)).text


def test_the_json_payload_keeps_its_html(api, make_staff, bearer):
    resp = post_json(
        api,
        {
            "from": "cleo@example.org",
            "to": "support@example.com",
            "subject": "Receipt",
            "html": HOSTILE_RECEIPT,
            "message_id": "<json.1@example.org>",
        },
        status=201,
    )
    admin = bearer(make_staff("ADMIN"))
    [message] = _thread(api, resp.json["ticket"], admin)
    assert message["html_available"] is True
    page = _original(api, resp.json["ticket"], message["id"], admin).text
    assert "Toner" in page
    assert "<script" not in page


# --- the ticket page --------------------------------------------------------------------


@pytest.fixture
def browser(api) -> webtest.TestApp:
    return webtest.TestApp(api.app, extra_environ={"HTTP_ACCEPT": "text/html"})


def _log_in(browser, user) -> None:
    form = browser.get("/login").forms[0]
    form["email"], form["password"] = user["email"], STAFF_PASSWORD
    form.submit()


def test_the_page_frames_the_original_in_a_sandbox_behind_show_the_whole_email(
    api, browser, make_staff
):
    pid = post_raw(api, _html_email(), status=201).json["ticket"]
    post_raw(api, _text_email(), status=201)
    _log_in(browser, make_staff("ADMIN"))
    page = browser.get(f"/tickets/{pid}")
    [message] = page.html.select("article.message")
    details = message.find("details", class_="whole-email")
    assert details.find("summary").text == "Show the whole email"
    assert "open" not in details.attrs
    frame = details.find("iframe")
    assert frame["src"] == f"/api/tickets/{pid}/messages/{message['id'][8:]}/original"
    # No script, no same-origin rights: only a clicked link may open a tab.
    assert set(frame["sandbox"]) == {"allow-popups", "allow-popups-to-escape-sandbox"}
    assert frame["loading"] == "lazy"
    assert frame["title"]
    # The page may frame our own URLs, and is itself never framed.
    policy = page.headers["Content-Security-Policy"]
    assert "frame-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    # What the frame loads, with the page's own session cookie.
    assert "Toner" in browser.get(frame["src"]).text


def test_a_text_email_keeps_its_whole_text_and_no_frame(api, browser, make_staff):
    raw = _text_email().replace(b"Just text.", b"Thanks!\r\n\r\nOn Monday Bo wrote:\r\n> Hi")
    pid = post_raw(api, raw, status=201).json["ticket"]
    _log_in(browser, make_staff("ADMIN"))
    [message] = browser.get(f"/tickets/{pid}").html.select("article.message")
    assert message.find("iframe") is None
    assert "On Monday Bo wrote" in message.find("div", class_="whole-text").text
