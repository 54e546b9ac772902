"""A hostile HTML email on the ticket page, in a real browser (issue 21 part 5): "Show the whole
email" shows it in its frame, and nothing in it runs or reaches out.

The email's script would change the page's title, open a dialog and ask a trap: an HTTP
server of the test's own on another port, which would also hear of any image, stylesheet,
background, frame, form or refresh of the email that got through. Twice: the email as the
desk stores it (sanitized by nh3), where nothing is there to block, so the browser reports
nothing at all; and the same email stored raw, as if the sanitizer had let everything
through, where the frame's sandbox and CSP alone stop it all (the browser's only reports
are of those blocks)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from supportdesk.core.redis_client import make_redis
from supportdesk.dev.embedded import free_port
from supportdesk.mail.inbound.parse import parse_mime
from supportdesk.web.services import build_services
from tests.conftest import STAFF_PASSWORD
from tests.factories import make_message, make_ticket


class _Trap(http.server.BaseHTTPRequestHandler):
    heard: list[str]

    def do_GET(self) -> None:  # the standard library names it
        self.heard.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trap() -> Iterator[tuple[str, list[str]]]:
    """(its base URL, the paths it was asked for)."""
    heard: list[str] = []
    handler = type("Trap", (_Trap,), {"heard": heard})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", heard
    server.shutdown()
    server.server_close()


def _hostile(trap_url: str) -> str:
    return f"""<html><head><title>Receipt</title>
<link rel="stylesheet" href="{trap_url}/stylesheet">
<style>body {{ background: url({trap_url}/style-element) }}</style>
<meta http-equiv="refresh" content="1;url={trap_url}/refresh">
<base href="{trap_url}/base/"></head>
<body onload="fetch('{trap_url}/onload')">
<table width="600" style="border-collapse:collapse"><tr><th align="left">Item</th>
<th align="right">Price</th></tr><tr><td style="padding:8px;background:url({trap_url}/td)">
Toner</td><td align="right">49.90</td></tr></table>
<script>parent.document.title = 'pwned'; document.title = 'pwned'; alert('pwned');
fetch('{trap_url}/script'); new Image().src = '{trap_url}/script-image';</script>
<img src="{trap_url}/remote-image" alt="pixel">
<img src="x" onerror="fetch('{trap_url}/onerror')">
<img srcset="{trap_url}/srcset 1x">
<iframe src="{trap_url}/iframe"></iframe>
<object data="{trap_url}/object"></object>
<form action="{trap_url}/form" method="post"><input name="q" value="1" autofocus></form>
<svg><image href="{trap_url}/svg-image"/></svg>
<a href="javascript:fetch('{trap_url}/javascript-link')">Unsubscribe</a>
</body></html>"""


def _email(trap_url: str) -> bytes:
    return (
        "From: Cleo <cleo@example.org>\r\nTo: support@example.com\r\nSubject: Receipt\r\n"
        "Message-ID: <hostile.1@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n" + _hostile(trap_url)
    ).encode()


@pytest.fixture
def browser_page(chromium, live_server) -> Iterator[tuple[object, list[str], list[str]]]:
    """A fresh context on the live server: (page, console errors, dialogs)."""
    context = chromium.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: m.type in ("error", "warning") and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    yield page, errors, dialogs
    context.close()


def _open_the_whole_email(page, pid: str, admin: dict) -> object:
    page.goto("/login")
    page.fill("#email", admin["email"])
    page.fill("#password", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/tickets")
    page.goto(f"/tickets/{pid}")
    title = page.title()
    page.click("details.whole-email summary")
    frame = page.frame_locator("iframe.original-email")
    frame.locator("table").wait_for()  # the frame loaded and shows the receipt
    page.wait_for_timeout(1500)  # past the refresh's one second, for anything late
    assert page.title() == title
    return frame


def test_the_sanitized_email_shows_its_table_and_nothing_in_it_acts(
    browser_page, trap, db, settings, make_staff, screenshots
):
    page, errors, dialogs = browser_page
    trap_url, heard = trap
    services = build_services(settings, db, make_redis(settings))
    received = services.inbound.receive(parse_mime(_email(trap_url)))
    admin = make_staff("ADMIN")

    frame = _open_the_whole_email(page, received.ticket_pid, admin)
    assert "Toner" in frame.locator("table").inner_text()
    assert "Remote images in this email were blocked" in frame.locator("body").inner_text()
    page.screenshot(path=screenshots / "original-email.png", full_page=True)
    assert heard == []
    assert dialogs == []
    assert errors == []  # nothing was left to block: no CSP report, no script error


def test_the_frame_alone_stops_an_email_the_sanitizer_did_not_clean(
    browser_page, trap, db, make_staff
):
    page, errors, dialogs = browser_page
    trap_url, heard = trap
    with db.transaction() as conn:
        ticket = make_ticket(conn)
        message = make_message(conn, ticket["id"], channel="EMAIL", html_body=_hostile(trap_url))
    admin = make_staff("ADMIN")

    _open_the_whole_email(page, ticket["pid"], admin)
    assert heard == []
    assert dialogs == []
    # The browser reports the blocks, each about what the email asked for (the trap, or a
    # relative URL under the frame's own) or its script; none of the page's own policy
    # (its scripts, styles, the frame of our own URL) refused anything.
    assert errors
    own = (trap_url.removeprefix("http://"), f"/messages/{message['id']}/", "sandboxed")
    assert [e for e in errors if not any(o in e for o in own)] == [], errors
    page_policy = ("script-src 'self'", "style-src 'self'", "frame-src 'self'", "frame-ancestors")
    assert [e for e in errors if any(p in e for p in page_policy)] == [], errors
