"""The development mailbox: a local SMTP server that keeps .eml files, and its pages."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.dev.embedded import free_port
from supportdesk.dev.mailbox import serve
from supportdesk.web.app import create_app


@pytest.fixture
def mailbox(tmp_path):
    port = free_port()
    controller = serve(tmp_path / "mail", "127.0.0.1", port)
    yield port, tmp_path / "mail"
    controller.stop()


def _send(
    port: int, subject: str, html: str | None = None, files: tuple[tuple[str, bytes], ...] = ()
) -> None:
    message = EmailMessage()
    message["From"] = "Support Desk <support@example.com>"
    message["To"] = "cleo@example.org"
    message["Subject"] = subject
    message["Message-ID"] = "<m1@example.com>"
    message.set_content("Hello Cleo,\nyour ticket is 202611-00001.")
    if html:
        message.add_alternative(html, subtype="html")
    for name, data in files:
        message.add_attachment(data, "application", "pdf", filename=name)
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        smtp.send_message(message)


def _browser(settings, db, directory, environment="development"):
    app = create_app(
        settings.replace(environment=environment, dev_mailbox_dir=directory),
        db=db,
        redis_client=make_redis(settings),
    )
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def test_what_the_mailbox_receives_is_listed_and_shown(settings, db, mailbox):
    port, directory = mailbox
    _send(
        port,
        "[#202611-00001] We received your request",
        html="<p>Hello <script>alert(1)</script></p>",
    )
    [stored] = list(directory.glob("*.eml"))
    assert b"X-Mailbox-Envelope-To: cleo@example.org" in stored.read_bytes()
    browser = _browser(settings, db, directory)
    listing = browser.get("/dev/mailbox")
    link = listing.html.select_one("table.mailbox a")
    assert link.text == "[#202611-00001] We received your request"
    one = browser.get(link["href"])
    headers = {
        th.text: td.text
        for th, td in (tr.find_all(["th", "td"]) for tr in one.html.select("table.headers tr"))
    }
    assert headers["Message-ID"] == "<m1@example.com>"
    assert headers["To"] == "cleo@example.org"
    assert "your ticket is 202611-00001." in one.html.select_one(".mail-text").text
    frame = one.html.select_one("iframe.mail-html")
    assert frame.has_attr("sandbox")
    assert not frame["sandbox"]
    assert "<script>alert(1)</script>" in frame["srcdoc"]  # shown, as data, inside the sandbox


@pytest.mark.parametrize(
    "name", ["..%2F..%2Fetc%2Fpasswd", "x.eml", "20261126T120000000000-zz.eml"]
)
def test_only_mailbox_files_can_be_opened(settings, db, mailbox, name):
    _, directory = mailbox
    _browser(settings, db, directory).get(f"/dev/mailbox/{name}", status=404)


def test_the_mailbox_pages_exist_only_in_development(settings, db, mailbox):
    _, directory = mailbox
    browser = _browser(settings, db, directory, environment="production")
    browser.get("/dev/mailbox", status=404)
    assert "No mail yet" in _browser(settings, db, directory).get("/dev/mailbox").text


def test_an_emails_attachments_are_listed(settings, db, mailbox):
    port, directory = mailbox
    _send(port, "Re: files", html="<p>Hi</p>", files=(("Rechnung März.pdf", b"%PDF" * 500),))
    browser = _browser(settings, db, directory)
    one = browser.get(browser.get("/dev/mailbox").html.select_one("table.mailbox a")["href"])
    [item] = one.html.select(".card ul li")
    assert item.text == "Rechnung März.pdf (application/pdf, 2 KB)"
    assert "Hello Cleo" in one.html.select_one(".mail-text").text
