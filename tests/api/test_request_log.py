"""The log of a whole run: one structured line per request, and no password, token or
secret anywhere in it (issue 11)."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urlsplit

import webtest

from tests.conftest import STAFF_PASSWORD, shared_app
from tests.webhook import SECRET, signed

LINE = re.compile(
    r"^method=(GET|POST|PATCH) path=\S+ status=\d{3} duration_ms=\d+\.\d "
    r"request_id=[0-9A-Za-z._-]+ user_id=(\d+|-)$"
)
NEW_PASSWORD = "a brand new passphrase"


def test_a_whole_run_logs_each_request_once_and_no_secret(settings, db, make_staff, caplog):
    caplog.set_level(logging.DEBUG)
    inbound = settings.replace(inbound_email_secret=SECRET)
    app = webtest.TestApp(shared_app(inbound, db))
    make_staff("ADMIN", email="ana@example.com")

    login = app.post_json(
        "/api/auth/login", {"email": "ana@example.com", "password": STAFF_PASSWORD}
    ).json
    staff = {"Authorization": f"Bearer {login['token']}"}
    ticket = app.post_json(
        "/api/tickets",
        {"name": "Cleo", "email": "cleo@example.org", "subject": "Hi", "body": "Hello"},
    ).json["ticket"]
    app.post_json(f"/api/tickets/{ticket['pid']}/messages", {"body": "On it"}, headers=staff)
    with db.transaction() as conn:
        [ack] = conn.execute(
            "SELECT body_text FROM email_outbox WHERE kind = 'ACKNOWLEDGEMENT'"
        ).fetchone()
    link = re.search(r"http://\S+/t/\S+", ack).group(0)
    sig = parse_qs(urlsplit(link).query)["sig"][0]
    parts = urlsplit(link)
    app.get(f"{parts.path}?{parts.query}", headers={"Accept": "text/html"})
    raw = (
        b"From: Dora <dora@example.org>\r\nTo: support@example.com\r\nSubject: Help\r\n"
        b"Message-ID: <m1@example.org>\r\n\r\nPlease help.\r\n"
    )
    headers = signed(raw)
    app.post("/api/inbound/email", raw, headers=headers, content_type="message/rfc822")
    changed = app.post_json(
        "/api/auth/password",
        {"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD},
        headers=staff,
    ).json
    app.post(
        "/api/auth/logout", headers={"Authorization": f"Bearer {changed['token']}"}, status=204
    )
    app.get("/no/such/page", status=404)
    requests = 8

    lines = [r.getMessage() for r in caplog.records if r.name == "supportdesk.requests"]
    assert len(lines) == requests
    for line in lines:
        assert LINE.match(line), line
    assert any(line.endswith(f"user_id={login['user']['id']}") for line in lines)
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in (
        STAFF_PASSWORD,
        NEW_PASSWORD,
        login["token"],
        login["csrf_token"],
        changed["token"],
        settings.secret_key,
        SECRET,
        headers["X-Signature"].split("=", 1)[1],
        sig,
    ):
        assert secret not in text
