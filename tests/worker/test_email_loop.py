"""The whole email loop on real servers: a ticket opened by email and acknowledged, a staff
answer in the API sent by the worker, and the customer's reply, built from the email the
SMTP server received (its headers), threading back into the same ticket."""

from __future__ import annotations

from email.message import EmailMessage

import webtest

from tests.conftest import shared_app
from tests.webhook import SECRET, post_raw
from tests.worker.conftest import running


def test_a_conversation_by_email_stays_in_one_ticket(
    settings, db, redis_client, make_worker, smtp_server, make_staff, bearer
):
    inbound = settings.replace(inbound_email_secret=SECRET)
    api = webtest.TestApp(shared_app(inbound, db))
    agent = make_staff("ADMIN", name="Ana Admin")

    first = EmailMessage()
    first["From"] = "Cleo Customer <cleo@example.org>"
    first["To"] = "support@example.com"
    first["Subject"] = "Scanner sends blank pages"
    first["Message-ID"] = "<loop.1@example.org>"
    first.set_content("Every scan comes out blank since Monday.")
    created = post_raw(api, first.as_bytes(), status=201).json
    pid = created["ticket"]

    with running(make_worker()):
        [ack] = smtp_server.wait_for(1)
        api.post_json(
            f"/api/tickets/{pid}/messages",
            {"body": "Please clean the glass."},
            headers=bearer(agent),
        )
        _, reply = smtp_server.wait_for(2)

    # What the customer's mail client does with the reply it received.
    assert ack.header("In-Reply-To") == "<loop.1@example.org>"
    answer = EmailMessage()
    answer["From"] = "Cleo Customer <cleo@example.org>"
    answer["To"] = reply.header("Reply-To")
    answer["Subject"] = "Re: " + reply.header("Subject")
    answer["Message-ID"] = "<loop.2@example.org>"
    answer["In-Reply-To"] = reply.message_id
    answer["References"] = f"{reply.header('References')} {reply.message_id}"
    answer.set_content(
        "That fixed it, thank you!\n\n"
        "On Tue, Support Desk <support@example.com> wrote:\n> Please clean the glass.\n"
    )
    threaded = post_raw(api, answer.as_bytes(), status=201).json
    assert (threaded["outcome"], threaded["ticket"]) == ("threaded", pid)

    thread = api.get(f"/api/tickets/{pid}/messages", headers=bearer(agent)).json["items"]
    assert [(m["author"], m["body"]) for m in thread] == [
        ("CUSTOMER", "Every scan comes out blank since Monday."),
        ("STAFF", "Please clean the glass."),
        ("CUSTOMER", "That fixed it, thank you!"),
    ]
    assert reply.header("Reply-To").startswith(f"support+{pid}.")
    assert reply.header("In-Reply-To") == ack.message_id
