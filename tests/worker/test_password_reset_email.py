"""The password-reset email end to end: a request to the web app, a real `supportdesk
worker` process that answers it, the test's SMTP server that receives the email, and the
link in it that sets the password (DESIGN.md section 13)."""

from __future__ import annotations

import re
import signal

import webtest

from tests.conftest import STAFF_PASSWORD, shared_app

_LINK = re.compile(r"https?://\S+(/password-reset/confirm\?token=\S+)")


def test_the_worker_emails_a_link_to_an_active_account_only(
    settings, db, redis_client, make_staff, smtp_server, worker_process
):
    make_staff("AGENT", email="ana@example.com", name="Ana Agent")
    make_staff("AGENT", email="gone@example.com", is_active=False)
    client = webtest.TestApp(shared_app(settings, db))
    proc = worker_process("worker")
    for email in ("nobody@example.com", "gone@example.com", "ana@example.com"):
        client.post_json("/api/auth/password-reset", {"email": email}, status=202)
    [received] = smtp_server.wait_for(1, timeout=20)
    assert received.rcpt_tos == ["ana@example.com"]
    assert received.header("Auto-Submitted") == "auto-generated"
    assert received.header("Subject").startswith("Set a new password")
    text = received.message.get_content()
    assert "Hello Ana Agent" in text
    assert "30 minutes" in text
    link = _LINK.search(text).group(1)
    page = client.get(link)
    page.form["new_password"] = "a new passphrase from the email"
    page.form.submit(status=303)
    client.post_json(
        "/api/auth/login",
        {"email": "ana@example.com", "password": STAFF_PASSWORD},
        status=401,
    )
    client.post_json(
        "/api/auth/login",
        {"email": "ana@example.com", "password": "a new passphrase from the email"},
        status=200,
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    # Nothing else was sent to anyone: the unknown and the deactivated got no email.
    assert [r.rcpt_tos for r in smtp_server.received] == [["ana@example.com"]]
