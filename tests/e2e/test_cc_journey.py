"""A conversation with a CC'd colleague in a real browser, on the real processes (issue 21,
DESIGN.md section 11): the web server in development mode, the email worker, the
development mailbox and the signed inbound webhook, as in test_journey.py.

A customer emails with a colleague in Cc. The ticket page shows the colleague under
"Copied (Cc)", and the reply box's Cc holds them. Staff reply; the mailbox shows one email
To the customer and Cc the colleague. The colleague answers that email, and the answer
appears in the ticket under the colleague's name. Each page is kept as a screenshot and
passes an axe-core audit; the page fixture's CSP check runs on every page.
"""

from __future__ import annotations

import email
import time
from email import policy
from email.message import EmailMessage

from tests.e2e import test_journey
from tests.e2e.test_journey import Pages, log_in, post_to_webhook, wait_for_mail

# The journey's processes and browser context, as fixtures of this module too.
desk = test_journey.desk
journey = test_journey.journey


def test_a_colleague_in_cc_gets_the_reply_and_answers(
    journey,
    desk,
    db,
    make_staff,
    screenshots,
):
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    folder = screenshots / "cc-journey"  # its own folder: Pages numbers and clears its files
    folder.mkdir(exist_ok=True)
    pages = Pages(folder)
    page = journey.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))

    # 1. A customer writes to support, with a colleague in Cc.
    first = EmailMessage()
    first["From"] = "Fay Client <fay@example.org>"
    first["To"] = "Support <support@example.com>"
    first["Cc"] = "Dana Doe <dana@example.org>"
    first["Subject"] = "The scanner is offline"
    first["Message-ID"] = "<cc-journey.1@example.org>"
    first.set_content("Since this morning. Dana sees it too.\n")
    opened = post_to_webhook(desk["url"], first.as_bytes())
    assert opened["outcome"] == "created"
    pid = opened["ticket"]

    # 2. Staff see the colleague copied, and the reply box's Cc holds her.
    log_in(page, "ana@example.com")
    page.goto(f"/tickets/{pid}")
    copied = page.locator("#copied li")
    assert copied.count() == 1
    assert "Dana Doe <dana@example.org>" in copied.first.inner_text()
    assert page.input_value("#reply-cc") == "dana@example.org"
    pages.keep(page, "ticket-with-cc")

    # 3. Staff reply: one email, To the customer and Cc the colleague.
    page.fill("#reply-body", "A technician is on the way.")
    page.click("#reply button[type=submit]")
    page.wait_for_url(f"**/tickets/{pid}?notice=replied#message-*")
    [reply_file] = wait_for_mail(page, desk["mailbox"], f"[#{pid}] Re: The scanner is offline")
    reply = email.message_from_bytes(reply_file.read_bytes(), policy=policy.default)
    assert reply["To"] == "fay@example.org"
    assert reply["Cc"] == "dana@example.org"
    assert reply["X-Mailbox-Envelope-To"] == "fay@example.org, dana@example.org"
    assert "A technician is on the way." in reply.get_body(("plain",)).get_content()
    page.click("table.mailbox a:has-text('Re: The scanner is offline')")
    pages.keep(page, "reply-email-with-cc")

    # 4. The colleague answers that email; the provider posts it to the webhook.
    answer = EmailMessage()
    answer["From"] = "Dana Doe <dana@example.org>"
    answer["To"] = str(reply["Reply-To"])
    answer["Cc"] = "fay@example.org"
    answer["Subject"] = f"Re: {reply['Subject']}"
    answer["Message-ID"] = "<cc-journey.dana@example.org>"
    answer["In-Reply-To"] = str(reply["Message-ID"])
    answer["References"] = f"{reply['References'] or ''} {reply['Message-ID']}".strip()
    answer.set_content("Thanks, I will let him in.\n\n> A technician is on the way.\n")
    received = post_to_webhook(desk["url"], answer.as_bytes())
    assert (received["outcome"], received["ticket"]) == ("threaded", pid)

    # 5. Her answer is in the ticket, under her name, and the timeline says who was copied.
    page.goto(f"/tickets/{pid}")
    last = page.locator("article.message").last
    assert last.locator("header strong").inner_text() == "Dana Doe"
    assert last.locator(".message-body:not(.whole-text)").inner_text().strip() == (
        "Thanks, I will let him in."
    )
    steps = page.locator(".timeline li span").all_inner_texts()
    assert "dana@example.org was copied on an email" in steps, steps
    assert "dana@example.org, copied on this ticket, wrote by email" in steps, steps
    deadline = time.monotonic() + 15
    while page.locator(".timeline li", has_text="Reply emailed to fay@example.org").count() < 1:
        assert time.monotonic() < deadline, "the reply's EMAIL_SENT never came"
        time.sleep(0.3)
        page.reload()
    pages.keep(page, "ticket-with-the-colleagues-answer")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p]
