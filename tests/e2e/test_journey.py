"""The whole lifecycle in a real browser, on the real processes (issue 11): the web server
in development mode (its /dev/mailbox), the email worker, the development mailbox (an SMTP
server writing .eml files) and the signed inbound webhook.

A customer opens a ticket with a file; the mailbox shows its acknowledgement. An ADMIN
filters the list, opens the ticket and assigns it to an AGENT. The AGENT sees only that
ticket and replies with a file; the mailbox shows the reply, threaded. The customer's
email answer, built from that email, is posted to the webhook and appears in the thread.
The timeline lists every step in order; the AGENT cannot open another ticket. Each page is
kept as a screenshot and passes an axe-core audit.

Staff write first (DESIGN.md section 11): an AGENT sends a New email to a customer, copying
a colleague; the mailbox receives it (To + Cc, no acknowledgement), and the customer's
answer comes back into that ticket and reopens it.
"""

from __future__ import annotations

import email
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pyotp
import pytest

from supportdesk.core.signing import WebhookSignature
from supportdesk.dev.embedded import free_port
from tests.api.test_attachments import PNG
from tests.conftest import STAFF_PASSWORD
from tests.factories import make_ticket
from tests.processes import SUPPORTDESK, settings_env, wait_until_healthy

WEBHOOK_SECRET = "journey-webhook-secret-0123456789"


@pytest.fixture
def desk(base_settings, db, tmp_path, request) -> Iterator[dict[str, object]]:
    """web (development), worker and dev-mailbox as processes on the test database; a test
    parametrized indirectly gives more settings (`{"AGENTS_SEE_UNASSIGNED": "true"}`)."""
    mailbox = tmp_path / "mail"
    smtp_port, web_port = free_port(), free_port()
    env = settings_env(
        base_settings,
        ENVIRONMENT="development",
        BCRYPT_ROUNDS="4",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        DEV_MAILBOX_DIR=str(mailbox),
        UPLOAD_DIR=str(tmp_path / "uploads"),
        INBOUND_EMAIL_SECRET=WEBHOOK_SECRET,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        EMAIL_SWEEP_SECONDS="0.5",
        WORKER_HEARTBEAT_SECONDS="0.5",
        **getattr(request, "param", {}),
    )
    commands = {
        "mailbox": [SUPPORTDESK, "dev-mailbox", "--port", str(smtp_port), "--dir", str(mailbox)],
        "worker": [SUPPORTDESK, "worker"],
        "web": [SUPPORTDESK, "web", "--port", str(web_port), "--workers", "1"],
    }
    procs = {}
    for name, argv in commands.items():
        log = (tmp_path / f"{name}.log").open("wb")
        procs[name] = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{web_port}"
    wait_until_healthy(url, procs["web"], tmp_path)
    yield {"url": url, "mailbox": mailbox}
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def journey(chromium, desk):
    context = chromium.new_context(base_url=desk["url"], viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context
    context.close()


AXE = (Path(__import__("axe_playwright_python").__file__).parent / "axe.min.js").read_text()


class Pages:
    """Screenshots and an accessibility audit of each page the journey visits."""

    def __init__(self, folder: Path, prefix: str = "journey"):
        self.folder = folder
        self.prefix = prefix
        self.taken: list[Path] = []
        for old in folder.glob(f"{prefix}-*.png"):  # an earlier run's, numbered otherwise
            old.unlink()

    def keep(self, page, name: str) -> None:
        path = self.folder / f"{self.prefix}-{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        # Evaluated by the browser's debugger, not injected as a script: the page's CSP,
        # which refuses inline script, stays as it is.
        page.evaluate(AXE + "\n;undefined")
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        violations = [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(node["target"]) for node in v["nodes"][:3])
            for v in result["violations"]
        ]
        assert not violations, f"{name}: " + "; ".join(violations)


def log_in(page, email_address: str) -> None:
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("#email", email_address)
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/tickets")


def open_the_only_ticket(page, pid: str, pages, shot: str) -> None:
    """The list shows exactly the ticket `pid`: keep a screenshot, then open it."""
    rows = page.locator("table.tickets tbody tr")
    assert rows.count() == 1
    assert pid in rows.first.inner_text()
    pages.keep(page, shot)
    rows.first.locator(f"a:has-text('{pid}')").click()
    page.wait_for_url(f"**/tickets/{pid}")


def wait_for_mail(page, mailbox: Path, subject_part: str, count: int = 1) -> list[Path]:
    """The mailbox page until it lists `count` emails whose subject has `subject_part`."""
    deadline = time.monotonic() + 20
    while True:
        page.goto("/dev/mailbox")
        if page.locator("table.mailbox a", has_text=subject_part).count() >= count:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"no email with {subject_part!r} in the mailbox")
        time.sleep(0.3)
    files = []
    for path in sorted(mailbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if subject_part in str(message["Subject"]):
            files.append(path)
    return files


def post_to_webhook(url: str, raw: bytes) -> dict:
    timestamp = int(time.time())
    signature = WebhookSignature(WEBHOOK_SECRET, lambda: None).sign(timestamp, raw)
    request = urllib.request.Request(
        f"{url}/api/inbound/email",
        data=raw,
        headers={
            "Content-Type": "message/rfc822",
            "X-Timestamp": str(timestamp),
            "X-Signature": signature,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201
        return json.loads(resp.read())


def test_the_whole_lifecycle(journey, desk, db, make_staff, screenshots):
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    make_staff("AGENT", email="bo@example.com", name="Bo Agent")
    with db.transaction() as conn:
        other = make_ticket(conn, subject="Someone else's request")
    pages = Pages(screenshots)
    page = journey.new_page()

    # 1. The customer opens a ticket with a photo and gets its number.
    page.goto("/")
    pages.keep(page, "public-form")
    page.fill("#name", "Cleo Customer")
    page.fill("#email", "cleo@example.org")
    page.fill("#subject", "The printer jams on every page")
    page.fill("#body", "Tray 2 jams.\nPhoto attached.")
    page.set_input_files(
        "#attachments", files=[{"name": "jam.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.click("button[type=submit]")
    pid = page.locator("#pid").inner_text()
    pages.keep(page, "confirmation")
    # ... and the mailbox shows the acknowledgement.
    [ack_file] = wait_for_mail(page, desk["mailbox"], f"[#{pid}] We received your request")
    pages.keep(page, "mailbox")
    page.click(f"table.mailbox a:has-text('[#{pid}]')")
    assert "We received your request" in page.inner_text("main")
    pages.keep(page, "acknowledgement")

    # 2. The ADMIN filters the list, opens the ticket and assigns it to the AGENT.
    log_in(page, "ana@example.com")
    page.select_option("#status", "OPEN")
    page.fill("#q", "printer jams")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/tickets?**")
    open_the_only_ticket(page, pid, pages, "admin-list-filtered")
    page.click("button[data-open-dialog]")
    pages.keep(page, "assign-dialog")
    page.locator("#assign-dialog select").select_option(label="Bo Agent · AGENT")
    page.locator("#assign-dialog button[type=submit]").click()
    page.wait_for_url(f"**/tickets/{pid}?notice=assigned")
    assert page.locator("#assignee").inner_text() == "Bo Agent"
    pages.keep(page, "admin-ticket")
    for path in ("/users", "/outbox", "/audit", "/account/password"):  # the ADMIN's other pages
        page.goto(path)
        pages.keep(page, "admin-" + path.strip("/").replace("/", "-"))

    # 3. The AGENT sees only that ticket and replies with a file.
    log_in(page, "bo@example.com")
    open_the_only_ticket(page, pid, pages, "agent-list")
    page.fill("#reply-body", "A technician comes tomorrow. The checklist is attached.")
    page.set_input_files(
        "#reply #attachments",
        files=[{"name": "checklist.txt", "mimeType": "text/plain", "buffer": b"1. Tray 2\n"}],
    )
    page.click("#reply button[type=submit]")
    page.wait_for_url(f"**/tickets/{pid}?notice=replied#message-*")
    pages.keep(page, "agent-replied")
    # ... and the mailbox shows the reply, threaded under the acknowledgement.
    [reply_file] = wait_for_mail(page, desk["mailbox"], f"[#{pid}] Re: The printer jams")
    ack = email.message_from_bytes(ack_file.read_bytes(), policy=policy.default)
    reply = email.message_from_bytes(reply_file.read_bytes(), policy=policy.default)
    assert reply["To"] == "cleo@example.org"
    assert reply["In-Reply-To"] == ack["Message-ID"]
    assert str(reply["Reply-To"]).startswith(f"support+{pid}.")
    assert "A technician comes tomorrow." in reply.get_body(("plain",)).get_content()
    # The file travels in the email itself (section 11), the customer's message quoted.
    [checklist] = reply.iter_attachments()
    assert (checklist.get_filename(), checklist.get_content()) == ("checklist.txt", "1. Tray 2\n")
    assert "Cleo Customer wrote:" in reply.get_body(("plain",)).get_content()
    page.click("table.mailbox a:has-text('Re: The printer jams')")
    pages.keep(page, "reply-email")

    # 4. The customer answers that email; the provider posts it to the webhook.
    answer = EmailMessage()
    answer["From"] = "Cleo Customer <cleo@example.org>"
    answer["To"] = str(reply["Reply-To"])
    answer["Subject"] = f"Re: {reply['Subject']}"
    answer["Message-ID"] = "<journey.answer@example.org>"
    answer["In-Reply-To"] = str(reply["Message-ID"])
    answer["References"] = f"{reply['References'] or ''} {reply['Message-ID']}".strip()
    answer.set_content("Thank you, tomorrow is fine.\n\n> A technician comes tomorrow.\n")
    received = post_to_webhook(desk["url"], answer.as_bytes())
    assert (received["outcome"], received["ticket"]) == ("threaded", pid)
    page.goto(f"/tickets/{pid}")
    last = page.locator("article.message").last
    shown = last.locator(".message-body:not(.whole-text)")
    assert shown.inner_text().strip() == "Thank you, tomorrow is fine."
    # The quoted line is cut from what is shown, and kept behind "Show the whole email".
    whole = last.locator("details .whole-text")
    assert not whole.is_visible()
    last.locator("details summary").click()
    assert "A technician comes tomorrow" in whole.inner_text()
    assert "from-customer" in (last.get_attribute("class") or "")

    # 5. The timeline, in order; the worker has recorded what it sent.
    deadline = time.monotonic() + 15
    while page.locator(".timeline li", has_text="emailed to cleo@example.org").count() < 2:
        assert time.monotonic() < deadline, "the reply's EMAIL_SENT never came"
        time.sleep(0.3)
        page.reload()
    steps = page.locator(".timeline li span").all_inner_texts()
    expected = [
        "Cleo Customer opened this ticket via the web form",
        "The customer attached jam.png",
        "Acknowledgement emailed to cleo@example.org",
        "Ana Admin assigned this to Bo Agent",
        "Bo Agent replied to the customer",
        "Bo Agent attached checklist.txt",
        "Reply emailed to cleo@example.org",
        "The customer wrote by email (cleo@example.org)",
    ]
    missing = [e for e in expected if not any(s.startswith(e) for s in steps)]
    assert not missing, f"not in the timeline: {missing}; it has {steps}"
    positions = [next(i for i, s in enumerate(steps) if s.startswith(e)) for e in expected]
    assert positions == sorted(positions), steps
    pages.keep(page, "agent-ticket-with-answer")

    # 6. The AGENT cannot open another ticket.
    response = page.goto(f"/tickets/{other['pid']}")
    assert response is not None
    assert response.status == 404
    pages.keep(page, "agent-not-found")

    print("\njourney screenshots:\n  " + "\n  ".join(str(p.resolve()) for p in pages.taken))


def test_staff_write_first(journey, desk, db, make_staff, screenshots):
    make_staff("AGENT", email="bo@example.com", name="Bo Agent")
    pages = Pages(screenshots, prefix="staff-email")
    page = journey.new_page()

    # 1. The AGENT opens New email from the list; a missing subject is said by its field.
    log_in(page, "bo@example.com")
    page.click("main a:has-text('New email')")
    page.wait_for_url("**/tickets/new")
    pages.keep(page, "new-email")
    page.fill("#to", "Cleo Customer <cleo@example.org>")
    page.fill("#cc", "dan@example.net")
    page.fill("#body", "Hello Cleo,\nyour order has shipped. The label is attached.")
    page.click("main button[type=submit]")
    assert page.locator("#subject-error").inner_text() == "Enter a subject."
    pages.keep(page, "new-email-refused")
    # What was typed is kept; the file is chosen again.
    assert page.locator("#to").input_value() == "Cleo Customer <cleo@example.org>"
    page.fill("#subject", "Your order has shipped")
    page.set_input_files(
        "#attachments",
        files=[{"name": "label.txt", "mimeType": "text/plain", "buffer": b"Parcel 42\n"}],
    )
    page.click("main button[type=submit]")
    page.wait_for_url("**/tickets/*?notice=emailed")
    pid = page.url.split("/tickets/")[1].split("?")[0]
    assert page.locator("#status").input_value() == "WAITING"
    assert page.locator("#assignee").inner_text() == "Bo Agent"
    pages.keep(page, "sent")

    # 2. The mailbox has the email, To the customer and Cc the colleague; nothing else.
    [sent_file] = wait_for_mail(page, desk["mailbox"], f"[#{pid}] Your order has shipped")
    sent = email.message_from_bytes(sent_file.read_bytes(), policy=policy.default)
    assert (sent["To"], sent["Cc"]) == ("cleo@example.org", "dan@example.net")
    assert str(sent["Reply-To"]).startswith(f"support+{pid}.")
    assert "your order has shipped" in sent.get_body(("plain",)).get_content()
    # The file travels attached (under EMAIL_ATTACHMENT_MAX_BYTES), with its bytes.
    [label] = [part for part in sent.iter_attachments() if part.get_filename() == "label.txt"]
    assert label.get_content().encode() == b"Parcel 42\n"
    assert len(list(desk["mailbox"].glob("*.eml"))) == 1  # no acknowledgement
    page.click(f"table.mailbox a:has-text('[#{pid}]')")
    pages.keep(page, "sent-email")

    # 3. The customer answers; the provider posts it to the webhook; it reopens the ticket.
    answer = EmailMessage()
    answer["From"] = "Cleo Customer <cleo@example.org>"
    answer["To"] = str(sent["Reply-To"])
    answer["Subject"] = f"Re: {sent['Subject']}"
    answer["Message-ID"] = "<journey.staff-first@example.org>"
    answer["In-Reply-To"] = str(sent["Message-ID"])
    answer["References"] = str(sent["Message-ID"])
    answer.set_content("Great, thank you!\n\n> your order has shipped.\n")
    received = post_to_webhook(desk["url"], answer.as_bytes())
    assert (received["outcome"], received["ticket"]) == ("threaded", pid)
    page.goto(f"/tickets/{pid}")
    assert page.locator("#status").input_value() == "OPEN"
    last = page.locator("article.message").last
    assert "from-customer" in (last.get_attribute("class") or "")
    assert last.locator(".message-body:not(.whole-text)").inner_text().strip() == (
        "Great, thank you!"
    )
    steps = page.locator(".timeline li span").all_inner_texts()
    expected = [
        "Bo Agent emailed Cleo Customer, opening this ticket",
        "Bo Agent copied dan@example.net",
        "The customer wrote by email (cleo@example.org)",
    ]
    missing = [e for e in expected if not any(s.startswith(e) for s in steps)]
    assert not missing, f"not in the timeline: {missing}; it has {steps}"
    pages.keep(page, "answered")


@pytest.mark.parametrize("desk", [{"AGENTS_SEE_UNASSIGNED": "true"}], indirect=True)
def test_staff_merge_a_duplicate(journey, desk, db, make_staff, screenshots):
    """A customer writes twice about one thing; an AGENT (who reaches the unassigned pile)
    merges the second ticket into the first from its page; the customer's answer to the
    second ticket's email lands in the first."""
    make_staff("AGENT", email="abe@example.com", name="Abe Agent")
    pages = Pages(screenshots, prefix="merge")
    page = journey.new_page()

    # 1. Two emails from Cleo: two tickets, each acknowledged.
    pids = []
    for n, subject in enumerate(("The printer jams", "Printer STILL jams")):
        first = EmailMessage()
        first["From"] = "Cleo Customer <cleo@example.org>"
        first["To"] = "support@example.com"
        first["Subject"] = subject
        first["Message-ID"] = f"<journey.merge-{n}@example.org>"
        first.set_content(f"{subject}, tray 2.\n")
        received = post_to_webhook(desk["url"], first.as_bytes())
        assert received["outcome"] == "created"
        pids.append(received["ticket"])
    original, duplicate = pids
    [ack_file] = wait_for_mail(page, desk["mailbox"], f"[#{duplicate}]")
    ack = email.message_from_bytes(ack_file.read_bytes(), policy=policy.default)

    # 2. Abe merges the duplicate into the first from the duplicate's page.
    log_in(page, "abe@example.com")
    page.goto(f"/tickets/{duplicate}")
    pages.keep(page, "duplicate")
    page.fill("#merge-into", duplicate)  # into itself first: refused by the form
    page.click(".merge-form button[type=submit]")
    assert "cannot be merged into itself" in page.locator(".alert.error").inner_text()
    pages.keep(page, "refused")
    page.fill("#merge-into", f"#{original}")
    page.click(".merge-form button[type=submit]")
    page.wait_for_url(f"**/tickets/{original}?notice=merged")
    bodies = page.locator(".message-body:not(.whole-text)").all_inner_texts()
    assert [b.strip() for b in bodies] == [
        "The printer jams, tray 2.",
        "Printer STILL jams, tray 2.",
    ]
    pages.keep(page, "merged")
    page.goto(f"/tickets/{duplicate}")
    banner = page.locator(".merged-banner")
    assert banner.inner_text().startswith(f"Merged into #{original}")
    pages.keep(page, "banner")
    banner.locator("a").click()
    page.wait_for_url(f"**/tickets/{original}")

    # 3. Cleo answers the duplicate's acknowledgement: it lands in the first ticket.
    answer = EmailMessage()
    answer["From"] = "Cleo Customer <cleo@example.org>"
    answer["To"] = str(ack["Reply-To"])
    answer["Subject"] = f"Re: {ack['Subject']}"
    answer["Message-ID"] = "<journey.merge-answer@example.org>"
    answer["In-Reply-To"] = str(ack["Message-ID"])
    answer["References"] = str(ack["Message-ID"])
    answer.set_content("It happens with tray 1 too.\n")
    received = post_to_webhook(desk["url"], answer.as_bytes())
    assert (received["outcome"], received["ticket"]) == ("threaded", original)
    page.goto(f"/tickets/{original}")
    last = page.locator("article.message").last
    assert last.locator(".message-body:not(.whole-text)").inner_text().strip() == (
        "It happens with tray 1 too."
    )
    steps = page.locator(".timeline li span").all_inner_texts()
    assert f"Abe Agent merged #{duplicate} into this ticket (1 message)" in steps
    pages.keep(page, "answered")


def test_bulk_actions_and_spam(journey, desk, db, make_staff, screenshots):
    """Issue 22 parts 7-8: an ADMIN closes tickets from the list's bulk form (with the "All
    on this page" box ticking every row), marks one as spam on its page, and unblocks its
    sender on the Blocked senders page. Each page passes the axe audit."""
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    with db.transaction() as conn:
        pids = [make_ticket(conn, subject=f"Printer {n}")["pid"] for n in range(3)]
        spam = make_ticket(conn, subject="Cheap pills", requester_email="eve@spam.example")
    pages = Pages(screenshots, prefix="bulk")
    page = journey.new_page()
    log_in(page, "ana@example.com")
    pages.keep(page, "list")

    # 1. "All on this page" ticks every row (JavaScript); one unticked again; close them.
    page.check("#bulk-all")
    assert page.locator("input[name=pids]:checked").count() == 4
    page.uncheck(f"#pick-{spam['pid']}")
    assert not page.locator("#bulk-all").is_checked()
    page.select_option("#bulk-change", "status:CLOSED")
    page.click("#bulk-form button[type=submit]")
    page.wait_for_url("**/tickets?**bulk=**")
    assert page.locator("#bulk-summary").inner_text() == "Bulk action: 3 changed."
    pages.keep(page, "bulk-closed")
    with db.transaction() as conn:
        closed = conn.execute(
            "SELECT pid FROM tickets WHERE status = 'CLOSED' ORDER BY pid"
        ).fetchall()
    assert [pid for (pid,) in closed] == sorted(pids)

    # 2. The spam: marked on its page, closed, its sender blocked.
    page.goto(f"/tickets/{spam['pid']}")
    page.click("button:has-text('Mark as spam')")
    page.wait_for_url(f"**/tickets/{spam['pid']}?notice=spam")
    assert page.locator("#status").input_value() == "CLOSED"
    pages.keep(page, "marked-spam")

    # 3. The Blocked senders page lists it; unblocked from there.
    page.click("header a:has-text('Blocked senders')")
    page.wait_for_url("**/blocked-senders")
    assert page.locator("table.blocked-senders").inner_text().count("eve@spam.example") == 1
    pages.keep(page, "blocked-senders")
    page.click("button[aria-label='Unblock eve@spam.example']")
    page.wait_for_url("**/blocked-senders?notice=removed")
    pages.keep(page, "unblocked")


@pytest.mark.parametrize("desk", [{"AGENTS_SEE_UNASSIGNED": "true"}], indirect=True)
def test_an_agent_takes_a_ticket_and_answers_with_a_saved_reply(
    journey, desk, db, make_staff, screenshots
):
    """Saved replies (DESIGN.md section 12), on a desk whose AGENTs see the unassigned
    pile: an AGENT saves a reply of its own, takes a ticket nobody has with the Take button,
    inserts the reply with JavaScript at the cursor after what it typed, and sends it; the
    customer's email has it filled in."""
    make_staff("AGENT", email="bo@example.com", name="Bo Agent")
    admin = make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    with db.transaction() as conn:
        ticket = make_ticket(
            conn,
            subject="Where is my parcel?",
            requester_name="Cleo Customer",
            requester_email="cleo@example.org",
        )
        conn.execute(
            "INSERT INTO saved_replies (title, body, owner_id, created_by) "
            "VALUES ('Greeting', 'Hello {{ customer.first_name }},', NULL, %s)",
            (admin["id"],),
        )
    pid = ticket["pid"]
    pages = Pages(screenshots, prefix="saved-reply")
    page = journey.new_page()
    refused: list[str] = []  # what the CSP (or anything else) refused, said on the console
    page.on("console", lambda m: m.type == "error" and refused.append(m.text))
    page.on("pageerror", lambda e: refused.append(str(e)))

    # 1. The AGENT saves a reply of its own from the header's Saved replies page.
    log_in(page, "bo@example.com")
    page.click("header nav a:has-text('Saved replies')")
    page.wait_for_url("**/saved-replies")
    page.fill("#title", "Parcel on its way")
    page.fill(
        "#body",
        "{{ customer.first_name }}, your parcel ({{ ticket.pid }}: {{ ticket.subject }}) "
        "left our warehouse today.\n{{ agent.name }}",
    )
    page.click("main button:has-text('Add')")
    page.wait_for_url("**/saved-replies?notice=added")
    pages.keep(page, "saved")

    # 2. It takes the unassigned ticket with the Take button.
    page.goto("/tickets?assigned_to=none")
    open_the_only_ticket(page, pid, pages, "unassigned")
    page.click("button:has-text('Take')")
    page.wait_for_url(f"**/tickets/{pid}?notice=taken")
    assert page.locator("#assignee").inner_text() == "Bo Agent"

    # 3. It types, then inserts the saved reply at the cursor, with JavaScript: the page
    #    stays as it is (no round trip), the text typed stays, the reply follows it.
    page.fill("#reply-body", "Thanks for waiting.\n\n")
    page.focus("#reply-body")
    page.keyboard.press("Control+End")
    assert page.locator("#saved-reply option").all_inner_texts() == [
        "Greeting (shared)",
        "Parcel on its way",
    ]
    page.select_option("#saved-reply", label="Parcel on its way")
    url_before = page.url
    with page.expect_response(lambda r: r.url.endswith("/render")) as rendered:
        page.click("#saved-reply-insert")
    assert rendered.value.status == 200
    expected = (
        f"Thanks for waiting.\n\nCleo, your parcel ({pid}: Where is my parcel?) left our "
        "warehouse today.\nBo Agent"
    )
    page.wait_for_function(
        "text => document.getElementById('reply-body').value === text", arg=expected
    )
    assert page.url == url_before
    pages.keep(page, "inserted")

    # 4. Sent, it is the reply; the customer's email has it filled in.
    page.click("#reply button:has-text('Send')")
    page.wait_for_url(f"**/tickets/{pid}?notice=replied*")
    last = page.locator("article.message").last
    assert last.locator(".message-body").first.inner_text().strip() == expected
    [sent_file] = wait_for_mail(page, desk["mailbox"], f"[#{pid}]")
    sent = email.message_from_bytes(sent_file.read_bytes(), policy=policy.default)
    assert sent["To"] == "cleo@example.org"
    text = sent.get_body(("plain",)).get_content()
    assert "Cleo, your parcel" in text
    assert f"({pid}: Where is my parcel?) left our warehouse today." in text
    assert "{{" not in text
    pages.keep(page, "emailed")
    assert not refused, refused


def test_notifications(journey, desk, db, make_staff, screenshots):
    """An ADMIN asks to be told of new tickets on the Notifications page; a customer's
    request reaches the mailbox as a notice to staff; the ADMIN follows the ticket from
    its page and stops again (DESIGN.md section 12)."""
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    pages = Pages(screenshots, prefix="notifications")
    page = journey.new_page()

    # 1. The header's Notifications link; new tickets are off until ticked.
    log_in(page, "ana@example.com")
    page.click("header a:has-text('Notifications')")
    page.wait_for_url("**/account/notifications")
    assert not page.locator("input[name=new_ticket]").is_checked()
    assert page.locator("input[name=customer_reply]").is_checked()
    page.check("input[name=new_ticket]")
    page.click("main button[type=submit]")
    page.wait_for_url("**/account/notifications?done=1")
    assert page.locator("input[name=new_ticket]").is_checked()
    pages.keep(page, "preferences")

    # 2. A customer's request: the mailbox has the acknowledgement and Ana's notice.
    page.context.clear_cookies()
    page.goto("/")
    page.fill("#name", "Cleo Customer")
    page.fill("#email", "cleo@example.org")
    page.fill("#subject", "The scanner is stuck")
    page.fill("#body", "It beeps twice.")
    page.click("button[type=submit]")
    pid = page.locator("#pid").inner_text()
    [notice_file] = wait_for_mail(page, desk["mailbox"], "New ticket from Cleo Customer")
    notice = email.message_from_bytes(notice_file.read_bytes(), policy=policy.default)
    assert notice["To"] == "ana@example.com"
    assert notice["Auto-Submitted"] == "auto-generated"
    assert str(notice["Subject"]).startswith(f"[#{pid}]")
    assert "It beeps twice." in notice.get_body(("plain",)).get_content()
    page.click("table.mailbox a:has-text('New ticket from Cleo Customer')")
    pages.keep(page, "new-ticket-notice")

    # 3. Follow from the ticket's page, and stop following.
    log_in(page, "ana@example.com")
    page.goto(f"/tickets/{pid}")
    page.click("form[action$='/follow'] button")
    page.wait_for_url("**?notice=followed")
    assert page.locator("form[action$='/follow'] button").inner_text() == "Unfollow"
    pages.keep(page, "following")
    page.click("form[action$='/follow'] button")
    page.wait_for_url("**?notice=unfollowed")
    assert page.locator("form[action$='/follow'] button").inner_text() == "Follow"


@pytest.mark.parametrize("desk", [{"REQUIRE_2FA_FOR": "admin"}], indirect=True)
def test_an_admin_enrols_two_factor_and_logs_in_with_a_code(
    journey, desk, db, make_staff, screenshots
):
    """REQUIRE_2FA_FOR=admin: an ADMIN's first login leads to enrolment and nothing else;
    the QR code and the secret in text on the page, a code computed from that secret turns
    two-factor on, the recovery codes are shown once; the next login asks for a code after
    the password (DESIGN.md section 13). No JavaScript is needed; each page passes the axe
    audit, and nothing is refused by the CSP."""
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    pages = Pages(screenshots, prefix="two-factor")
    page = journey.new_page()
    # What the CSP (or anything else) refused, said on the console; not the statuses this
    # journey asks for on purpose (the 403 before enrolling, the 401 of a wrong code).
    refused: list[str] = []
    page.on(
        "console",
        lambda m: (
            m.type == "error"
            and not m.text.startswith("Failed to load resource: the server responded with a status")
            and refused.append(m.text)
        ),
    )
    page.on("pageerror", lambda e: refused.append(str(e)))

    # 1. The password alone leads to enrolment; another page says to enrol first.
    page.goto("/login")
    page.fill("#email", "ana@example.com")
    page.fill("#password", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account/two-factor")
    assert "must use two-factor" in page.locator("main").inner_text()
    pages.keep(page, "must-enrol")
    response = page.goto("/tickets")
    assert response.status == 403
    page.click("main a:has-text('Set up two-factor authentication')")
    page.wait_for_url("**/account/two-factor")

    # 2. Enrol: the QR code (inline SVG) and the secret as text; a code of it turns it on.
    page.click("main button:has-text('Set up two-factor authentication')")
    page.wait_for_selector("figure.qr svg")  # the form's answer, not the page before it
    assert page.locator("figure.qr svg").count() == 1
    secret = page.locator("#totp-secret").inner_text()
    pages.keep(page, "enrol")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button:has-text('Turn on two-factor')")
    page.wait_for_selector("ul.recovery-codes code")
    codes = page.locator("ul.recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    pages.keep(page, "recovery-codes")
    assert page.goto("/tickets").status == 200  # open now

    # 3. Log out; the next login asks for a code after the password. A wrong code is said
    # so, with the code step again; a recovery code would do, a code of the app does.
    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/login")
    page.fill("#email", "ana@example.com")
    page.fill("#password", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#code")
    pages.keep(page, "code-step")
    page.fill("#code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("main button:has-text('Verify')")
    assert "not right" in page.locator(".alert.error").inner_text()
    # The enrolment's code is used up: the next step's code, as from a phone a little
    # ahead, is taken (one step of drift) and is later than the spent one.
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("main button:has-text('Verify')")
    page.wait_for_url("**/tickets")
    page.click("header a:has-text('Two-factor')")
    assert "is on" in page.locator("main").inner_text()
    pages.keep(page, "on")
    assert not refused, refused
