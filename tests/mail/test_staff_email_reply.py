"""The customer's answer to a staff-started ticket (DESIGN.md section 11), delivered to the
SMTP listener: it threads into the ticket by the In-Reply-To of our first email (whose
Message-ID carries the ticket's token) and reopens it. The email as the worker sends it is
in tests/worker/test_staff_email_loop.py."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import webtest

from tests.conftest import shared_app
from tests.webhook import rows


def test_the_answer_by_smtp_threads_back_and_reopens_the_ticket(
    listener, settings, db, make_staff, bearer
):
    api = webtest.TestApp(shared_app(settings, db))
    ana = make_staff("AGENT", email="ana@example.com")
    body = {"to": "cleo@example.org", "subject": "Your refund", "body": "It is on its way."}
    pid = api.post_json("/api/tickets", body, headers=bearer(ana)).json["ticket"]["pid"]
    [ours] = rows(db, "SELECT message_id, reply_to, subject FROM email_outbox")

    answer = EmailMessage()
    answer["From"] = "Cleo Customer <cleo@example.org>"
    answer["To"] = ours["reply_to"]
    answer["Subject"] = "Re: " + ours["subject"]
    answer["Message-ID"] = "<cleo.smtp.1@example.org>"
    answer["In-Reply-To"] = ours["message_id"]
    answer["References"] = ours["message_id"]
    answer.set_content("Received, thank you.")
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        refused = smtp.sendmail("cleo@example.org", [ours["reply_to"]], answer.as_bytes())
    assert refused == {}

    ticket = api.get(f"/api/tickets/{pid}", headers=bearer(ana)).json["ticket"]
    assert ticket["status"] == "OPEN"
    thread = api.get(f"/api/tickets/{pid}/messages", headers=bearer(ana)).json["items"]
    assert [(m["author"], m["body"]) for m in thread] == [
        ("STAFF", "It is on its way."),
        ("CUSTOMER", "Received, thank you."),
    ]
    assert rows(db, "SELECT count(*) AS n FROM tickets") == [{"n": 1}]
