"""The team desk proven in a real browser (issue 24, part 1): one journey through the
capabilities of issues 20-23 on real processes (`supportdesk web` in development mode, the
`supportdesk worker` fetching a real Dovecot and running the scheduler, the dev SMTP
mailbox) and the tests' own OAuth authorization server standing in for Microsoft.

An ADMIN enrols two-factor and logs in with a code, adds a mailbox and connects it with
"Connect with Microsoft". A customer emails that mailbox copying a colleague; the ticket
appears and an AGENT who asked for new-ticket notices is emailed one. The AGENT (AGENTS see
the unassigned pile) takes the ticket, inserts a saved reply that holds a file and sends it:
customer and colleague get one email with the file and the history quoted. The colleague's
answer threads back; the customer's duplicate ticket is merged; the ticket is resolved and
the scheduler closes it. The ADMIN exports the customer, erases them and reads the audit
log. Every page is kept as a screenshot and passes axe-core; nothing is refused by the CSP
and nothing asked for is a 404.

What the browser cannot do, the test does in its place, and says so here:
- the authorization server's consent page is plain text (tests/oauthserver.py): the test
  accepts it as the user would (`oauth.accept`) and the browser follows the redirect back;
- mail arrives by IMAP APPEND into Dovecot, as a mail server would deliver it.
The file is added to the saved reply on the Saved replies page; inserted with JavaScript,
the saved reply fills in its text and offers its file as a checked box, which Send attaches.
"""

from __future__ import annotations

import email
import json
import subprocess
import time
import zipfile
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage

import pyotp
import pytest
from psycopg.rows import dict_row

from supportdesk.dev.embedded import free_port
from tests.conftest import STAFF_PASSWORD
from tests.e2e.test_journey import Pages, log_in, wait_for_mail
from tests.oauthserver import CLIENT_ID, CLIENT_SECRET
from tests.processes import SUPPORTDESK, settings_env, wait_until_healthy

CUSTOMER = "cleo@example.org"
COLLEAGUE = "dan@example.org"


@pytest.fixture
def team_desk(base_settings, db, tmp_path, oauth, dovecot, imap_user) -> Iterator[dict]:
    """web (development), worker and dev-mailbox as processes; Microsoft's endpoints are
    the tests' authorization server, whose tokens Dovecot checks."""
    mailbox = tmp_path / "mail"
    smtp_port, web_port = free_port(), free_port()
    url = f"http://127.0.0.1:{web_port}"
    oauth.allow_redirect(f"{url}/oauth/callback")
    env = settings_env(
        base_settings,
        ENVIRONMENT="development",
        BCRYPT_ROUNDS="4",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        DEV_MAILBOX_DIR=str(mailbox),
        UPLOAD_DIR=str(tmp_path / "uploads"),
        PUBLIC_BASE_URL=url,
        EMAIL_SWEEP_SECONDS="0.5",
        WORKER_HEARTBEAT_SECONDS="0.5",
        AGENTS_SEE_UNASSIGNED="true",
        AUTO_CLOSE_AFTER="3s",
        SCHEDULER_SECONDS="1",
        OAUTH_MICROSOFT_CLIENT_ID=CLIENT_ID,
        OAUTH_MICROSOFT_CLIENT_SECRET=CLIENT_SECRET,
        OAUTH_MICROSOFT_AUTHORIZE_URL=oauth.authorize_url,
        OAUTH_MICROSOFT_TOKEN_URL=oauth.token_url,
        SSL_CERT_FILE=str(dovecot.cert_file),  # trust the test IMAP server's certificate
        IMAP_POLL_SECONDS="0.5",
        IMAP_RETRY_MAX_SECONDS="1",
        IMAP_TIMEOUT_SECONDS="5",
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
    wait_until_healthy(url, procs["web"], tmp_path)
    yield {"url": url, "mailbox": mailbox, "env": env}
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser_page(chromium, team_desk, oauth) -> Iterator[object]:
    """A page whose console errors (the CSP's refusals) and 404s fail the test."""
    context = chromium.new_context(
        base_url=team_desk["url"], viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: m.type == "error" and problems.append(f"{m.text} at {m.location.get('url')}"),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: r.status == 404 and problems.append(f"404 {r.url}"))
    yield page
    context.close()
    # The test authorization server's consent page has no favicon: not the desk's 404.

    oauth_origin = "/".join(oauth.authorize_url.split("/")[:3]) + "/"
    ours = [p for p in problems if not p.endswith(f"at {oauth_origin}favicon.ico")]
    assert not ours, ours


def reload_until(page, check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.5)
        page.reload()


def query(db, sql: str, *args) -> list[dict]:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, args).fetchall()


def test_the_team_desk_journey(
    browser_page, team_desk, db, make_staff, screenshots, oauth, dovecot, imap_user, tmp_path
):
    started = time.monotonic()
    make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    make_staff("AGENT", email="bo@example.com", name="Bo Agent")
    pages = Pages(screenshots, prefix="team")
    page = browser_page
    steps: dict[str, float] = {}

    def lap(name: str) -> None:
        steps[name] = round(time.monotonic() - started, 1)

    # 1. The ADMIN enrols two-factor from the header's Two-factor page.
    log_in(page, "ana@example.com")
    page.click("header a:has-text('Two-factor')")
    page.wait_for_url("**/account/two-factor")
    pages.keep(page, "two-factor-off")
    page.click("main button:has-text('Set up two-factor authentication')")
    page.wait_for_selector("#totp-secret")
    secret = page.locator("#totp-secret").inner_text()
    pages.keep(page, "two-factor-enrol")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button:has-text('Turn on two-factor')")
    page.wait_for_selector("ul.recovery-codes code")
    recovery_codes = page.locator("ul.recovery-codes code").all_inner_texts()
    assert len(recovery_codes) == 10
    pages.keep(page, "two-factor-recovery-codes")

    # 2. Meanwhile the AGENT asks to be told of new tickets.
    log_in(page, "bo@example.com")
    page.click("header a:has-text('Notifications')")
    page.wait_for_url("**/account/notifications")
    page.check("input[name=new_ticket]")
    page.click("main button[type=submit]")
    page.wait_for_url("**/account/notifications?done=1")
    pages.keep(page, "agent-notifications")
    lap("two-factor enrolled, notices asked for")

    # 3. The ADMIN logs in with the password and a code (the enrolment's is spent).
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("#email", "ana@example.com")
    page.fill("#password", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#code")
    pages.keep(page, "login-code")
    # The next step's code, as from a phone a little ahead (one step of drift is taken):
    # later than the spent one, so no wait for the clock to pass it.
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))
    page.click("main button:has-text('Verify')")
    page.wait_for_url("**/tickets")
    lap("logged in with a code")

    # 4. It adds the mailbox (Microsoft, OAuth) and connects it with "Connect with Microsoft".
    page.goto("/mailboxes")
    page.fill("#address", imap_user)
    page.fill("#display_name", "Acme Support")
    page.select_option("#auth", "OAUTH2")
    page.select_option("#oauth_provider", "MICROSOFT")
    page.fill("#imap_host", dovecot.host)
    page.fill("#imap_port", str(dovecot.ssl_port))
    page.select_option("#imap_security", "SSL")
    page.fill("#username", imap_user)
    page.check("input[name=is_active]")
    pages.keep(page, "mailboxes-add")
    page.click("main button:has-text('Add')")
    page.wait_for_url("**/mailboxes?**")
    pages.keep(page, "mailboxes-added")
    page.click("a:has-text('Connect with Microsoft')")
    page.wait_for_url(oauth.authorize_url + "?**")
    # The consent page (plain text at the test server): accepted as the user would.
    page.goto(oauth.accept(page.url, imap_user))
    page.wait_for_url("**/mailboxes?notice=connected**")
    pages.keep(page, "mailbox-connected")
    # Mail that arrives once the worker has fetched the mailbox is new (no backfill asked).
    last_fetch = page.locator("main table tbody tr").first.locator("td").nth(3)
    reload_until(page, lambda: last_fetch.inner_text() != "never", "the worker fetches it", 45)
    pages.keep(page, "mailbox-fetched")
    lap("mailbox connected")

    # 5. The customer emails the mailbox, copying a colleague: a ticket; Bo is told.
    first = EmailMessage()
    first["From"] = f"Cleo Customer <{CUSTOMER}>"
    first["To"] = f"Acme Support <{imap_user}>"
    first["Cc"] = f"Dan Colleague <{COLLEAGUE}>"
    first["Subject"] = "The printer jams on every page"
    first["Message-ID"] = "<team.first@example.org>"
    first.set_content("Tray 2 jams on every page.\n")
    dovecot.append(imap_user, first.as_bytes())
    [notice_file] = wait_for_mail(
        page, team_desk["mailbox"], "New ticket from Cleo Customer", count=1
    )
    notice = email.message_from_bytes(notice_file.read_bytes(), policy=policy.default)
    assert notice["To"] == "bo@example.com"
    pid = str(notice["Subject"]).split("]")[0].removeprefix("[#")
    page.click("table.mailbox a:has-text('New ticket from Cleo Customer')")
    pages.keep(page, "agent-new-ticket-notice")
    lap("emailed ticket, notice")

    # 6. Bo saves a reply with a file, takes the ticket, inserts the reply and sends it.
    log_in(page, "bo@example.com")
    page.click("header nav a:has-text('Saved replies')")
    page.fill("#title", "Technician")
    page.fill("#body", "Hello {{ customer.first_name }}, a technician comes tomorrow.")
    page.set_input_files(
        "#attachments",
        files=[{"name": "checklist.txt", "mimeType": "text/plain", "buffer": b"1. Tray 2\n"}],
    )
    page.click("main button:has-text('Add')")
    page.wait_for_url("**/saved-replies?notice=added")
    assert "Files: checklist.txt" in page.locator("#personal-title + table").inner_text()
    pages.keep(page, "saved-replies")
    page.goto("/tickets?assigned_to=none")
    pages.keep(page, "agent-unassigned")
    page.click(f"table.tickets a:has-text('{pid}')")
    page.wait_for_url(f"**/tickets/{pid}")
    page.click("button:has-text('Take')")
    page.wait_for_url(f"**/tickets/{pid}?notice=taken")
    assert COLLEAGUE in page.locator("#reply-cc").input_value()
    page.select_option("#saved-reply", label="Technician")
    page.click("#saved-reply-insert")
    page.wait_for_function(
        "() => document.getElementById('reply-body').value.includes('technician comes')"
    )
    offered = page.locator("#saved-reply-files label")
    offered.wait_for()
    assert offered.inner_text().startswith("Attach from the saved reply: checklist.txt")
    assert page.is_checked("#saved-reply-files input[name=saved_reply_file]")
    assert page.url.endswith(f"/tickets/{pid}?notice=taken")  # inserted in place, by script
    pages.keep(page, "agent-reply-ready")
    page.click("#reply button:has-text('Send')")
    page.wait_for_url(f"**/tickets/{pid}?notice=replied*")
    pages.keep(page, "agent-replied")
    [reply_file] = wait_for_mail(page, team_desk["mailbox"], f"[#{pid}] Re: The printer jams")
    reply = email.message_from_bytes(reply_file.read_bytes(), policy=policy.default)
    assert (reply["To"], reply["Cc"]) == (CUSTOMER, COLLEAGUE)
    text = reply.get_body(("plain",)).get_content()
    assert "Hello Cleo, a technician comes tomorrow." in text
    lines = text.splitlines()  # the history, quoted after the signature
    assert lines[-1] == "> Tray 2 jams on every page.", lines
    assert lines[-2].endswith("Cleo Customer wrote:"), lines
    [checklist] = reply.iter_attachments()
    assert (checklist.get_filename(), checklist.get_content()) == ("checklist.txt", "1. Tray 2\n")
    page.click("table.mailbox a:has-text('Re: The printer jams')")
    pages.keep(page, "reply-email")
    lap("reply sent")

    # 7. The colleague answers that email: it threads back into the ticket.
    answer = EmailMessage()
    answer["From"] = f"Dan Colleague <{COLLEAGUE}>"
    answer["To"] = str(reply["Reply-To"])
    answer["Subject"] = f"Re: {reply['Subject']}"
    answer["Message-ID"] = "<team.colleague@example.org>"
    answer["In-Reply-To"] = str(reply["Message-ID"])
    answer["References"] = f"{reply['References'] or ''} {reply['Message-ID']}".strip()
    answer.set_content("Tomorrow morning works for us.\n")
    dovecot.append(imap_user, answer.as_bytes())
    page.goto(f"/tickets/{pid}")
    reload_until(
        page,
        lambda: "Tomorrow morning works" in page.locator("article.message").last.inner_text(),
        "the colleague's answer in the ticket",
    )
    assert "Dan Colleague" in page.locator("article.message").last.inner_text()
    pages.keep(page, "colleague-threaded")
    lap("colleague threaded")

    # 8. The customer writes again, not as an answer: a duplicate, merged by Bo.
    again = EmailMessage()
    again["From"] = f"Cleo Customer <{CUSTOMER}>"
    again["To"] = imap_user
    again["Subject"] = "Printer STILL jams"
    again["Message-ID"] = "<team.duplicate@example.org>"
    again.set_content("Still jamming, tray 2.\n")
    dovecot.append(imap_user, again.as_bytes())
    page.goto("/tickets")
    reload_until(
        page,
        lambda: page.locator("table.tickets a", has_text="Printer STILL jams").count() == 1,
        "the duplicate ticket",
    )
    pages.keep(page, "agent-list-duplicate")
    page.click("table.tickets a:has-text('Printer STILL jams')")
    page.wait_for_url("**/tickets/*")
    duplicate = page.url.split("/tickets/")[1].split("?")[0]
    page.fill("#merge-into", f"#{pid}")
    page.click(".merge-form button[type=submit]")
    page.wait_for_url(f"**/tickets/{pid}?notice=merged")
    assert "Still jamming, tray 2." in page.locator("main").inner_text()
    pages.keep(page, "merged")
    lap("duplicate merged")

    # 9. Resolved by Bo; the scheduler (in the worker) closes it once it has rested.
    page.select_option("#status", "RESOLVED")
    page.click("form[action$='/tickets/" + pid + "'] button:has-text('Update')")
    page.wait_for_url(f"**/tickets/{pid}?**")
    assert page.locator("#status").input_value() == "RESOLVED"
    pages.keep(page, "resolved")
    reload_until(page, lambda: page.locator("#status").input_value() == "CLOSED", "auto-closed", 40)
    pages.keep(page, "auto-closed")
    lap("resolved, auto-closed")

    # 10. The ADMIN (a recovery code this time) exports Cleo, erases her, reads the audit log.
    page.context.clear_cookies()
    page.goto("/login")
    page.fill("#email", "ana@example.com")
    page.fill("#password", STAFF_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#code")
    # This time with a recovery code (the app's last code is spent: a code is good once).
    page.fill("#code", recovery_codes[0])
    page.click("main button:has-text('Verify')")
    page.wait_for_url("**/tickets")
    page.click("header a:has-text('Customer data')")
    page.wait_for_url("**/customer-data")
    pages.keep(page, "customer-data")
    page.fill("#export-email", CUSTOMER)
    with page.expect_download() as download:
        page.click("button:has-text('Download the export')")
    path = tmp_path / "export.zip"
    download.value.save_as(path)
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    assert [t["pid"] for t in manifest["tickets"]] == sorted([pid, duplicate])
    page.fill("#erase-email", CUSTOMER)
    page.click("button:has-text('Erase…')")
    page.wait_for_load_state()
    pages.keep(page, "erase-confirm")
    page.fill("#confirm", CUSTOMER)
    page.click("button:has-text('Erase for good')")
    page.wait_for_url("**/customer-data?notice=erased**")
    pages.keep(page, "erased")
    page.click("header a:has-text('Audit')")
    page.wait_for_url("**/audit**")
    pages.keep(page, "audit-log")
    actions = {
        (c or "").split()[-1].removeprefix("audit-")
        for c in page.locator("table.audit .badge").evaluate_all("els => els.map(e => e.className)")
    }
    assert {
        "login",
        "two_factor_enabled",
        "recovery_code_used",
        "mailbox_created",
        "mailbox_authorized",
        "customer_exported",
        "customer_erased",
    } <= actions, actions
    assert CUSTOMER not in page.locator("main").inner_text()  # named by a keyed hash only
    lap("exported, erased, audit read")

    print(f"\nteam journey: {len(pages.taken)} pages, steps at seconds {steps}")
