"""Staff write first, on real servers: the email a staff member starts a ticket with, as the
worker delivers it to the SMTP server (To + Cc in one transaction, From the chosen
mailbox), and the customer's answer, built from what the server received, threading back
into that ticket and reopening it (through the signed webhook; the SMTP listener's way in
is in tests/mail/test_staff_email_reply.py)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
import webtest

from tests.conftest import shared_app
from tests.oauthserver import insert_mailbox
from tests.webhook import SECRET, post_raw, rows
from tests.worker.conftest import running


@pytest.fixture
def api(settings, db):
    inbound = settings.replace(inbound_email_secret=SECRET)
    return webtest.TestApp(shared_app(inbound, db))


def answer_to(sent, body: str, message_id: str, sender: str = "Cleo Customer <cleo@example.org>"):
    """What the customer's mail client writes when they press Reply on `sent`."""
    answer = EmailMessage()
    answer["From"] = sender
    answer["To"] = sent.header("Reply-To")
    answer["Subject"] = "Re: " + sent.header("Subject")
    answer["Message-ID"] = message_id
    answer["In-Reply-To"] = sent.message_id
    answer["References"] = sent.message_id
    answer.set_content(f"{body}\n\nOn Mon, {sent.header('From')} wrote:\n> (our email)\n")
    return answer.as_bytes()


def test_the_first_email_reaches_customer_and_copies_and_the_answer_threads_back(
    api, db, make_worker, smtp_server, make_staff, bearer
):
    ana = make_staff("AGENT", name="Ana Agent", email="ana@example.com")
    body = {
        "to": "Cleo Customer <cleo@example.org>",
        "cc": ["dan@example.net"],
        "subject": "Your order has shipped",
        "body": "Hello Cleo, it left today.",
    }
    with running(make_worker()):
        ticket = api.post_json("/api/tickets", body, headers=bearer(ana)).json["ticket"]
        [sent] = smtp_server.wait_for(1)
    pid = ticket["pid"]

    # One email, one SMTP transaction, To the customer and Cc the copied colleague; no
    # acknowledgement.
    assert sorted(sent.rcpt_tos) == ["cleo@example.org", "dan@example.net"]
    assert sent.header("To") == "cleo@example.org"
    assert sent.header("Cc") == "dan@example.net"
    assert sent.header("Subject") == f"[#{pid}] Your order has shipped"
    assert sent.header("From") == "Support Desk <support@example.com>"
    assert sent.header("Reply-To").startswith(f"support+{pid}.")
    assert sent.header("Auto-Submitted") == ""
    assert sent.header("In-Reply-To") == ""
    assert "Hello Cleo, it left today." in sent.message.get_body(("plain",)).get_content()
    assert len(smtp_server.received) == 1

    threaded = post_raw(api, answer_to(sent, "Thanks, got it!", "<cleo.1@example.org>")).json
    assert (threaded["outcome"], threaded["ticket"]) == ("threaded", pid)
    now = api.get(f"/api/tickets/{pid}", headers=bearer(ana)).json["ticket"]
    assert now["status"] == "OPEN"  # WAITING -> OPEN, as for any customer reply
    thread = api.get(f"/api/tickets/{pid}/messages", headers=bearer(ana)).json["items"]
    assert [(m["author"], m["body"]) for m in thread] == [
        ("STAFF", "Hello Cleo, it left today."),
        ("CUSTOMER", "Thanks, got it!"),
    ]
    # The author owns the ticket, so the author is told the customer answered.
    [notice] = rows(db, "SELECT to_address FROM email_outbox WHERE kind = 'NOTICE'")
    assert notice["to_address"] == "ana@example.com"
    assert rows(db, "SELECT count(*) AS n FROM tickets") == [{"n": 1}]


def test_the_copied_colleague_answers_into_the_same_ticket(
    api, db, make_worker, smtp_server, make_staff, bearer
):
    ana = make_staff("ADMIN", email="ana@example.com")
    body = {
        "to": "cleo@example.org",
        "cc": "Dan <dan@example.net>",
        "subject": "Contract renewal",
        "body": "Shall we renew?",
    }
    with running(make_worker()):
        pid = api.post_json("/api/tickets", body, headers=bearer(ana)).json["ticket"]["pid"]
        [sent] = smtp_server.wait_for(1)
    raw = answer_to(sent, "Yes, renew.", "<dan.1@example.net>", sender="Dan <dan@example.net>")
    threaded = post_raw(api, raw).json
    assert (threaded["outcome"], threaded["ticket"]) == ("threaded", pid)


def test_from_a_mailbox_the_email_and_the_answer_use_its_address(
    api, db, make_worker, smtp_server, make_staff, bearer
):
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, auth="PASSWORD", address="sales@acme.example")
    ana = make_staff("AGENT", email="ana@example.com")
    body = {
        "to": "cleo@example.org",
        "subject": "A quote",
        "body": "Here is our quote.",
        "mailbox_id": mailbox["id"],
    }
    with running(make_worker()):
        pid = api.post_json("/api/tickets", body, headers=bearer(ana)).json["ticket"]["pid"]
        [sent] = smtp_server.wait_for(1)
    assert sent.header("From") == "Acme Support <sales@acme.example>"
    assert sent.header("Reply-To") == "sales@acme.example"
    assert sent.mail_from == "sales@acme.example"
    assert sent.rcpt_tos == ["cleo@example.org"]
    # Its Message-ID carries the ticket's token: the answer threads by In-Reply-To alone.
    assert f"sd.{pid}." in sent.message_id

    threaded = post_raw(api, answer_to(sent, "Looks good.", "<cleo.2@example.org>")).json
    assert (threaded["outcome"], threaded["ticket"]) == ("threaded", pid)
