"""Saved replies in the pages (DESIGN.md section 12): the management page (shared ones for
ADMIN and SUB_ADMIN, one's own for everyone) and the reply box's Insert without
JavaScript, which shows the ticket page again with the reply filled in after what was typed.
(With JavaScript: tests/e2e/test_journey.py.)"""

from __future__ import annotations

import pytest
import webtest

from tests.factories import make_ticket
from tests.pages.test_ticket_pages import form_with_action, log_in


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


@pytest.fixture
def desk(db, make_staff):
    ana = make_staff("ADMIN", email="ana@example.com", name="Ana Admin")
    bo = make_staff("AGENT", email="bo@example.com", name="Bo Agent")
    with db.transaction() as conn:
        ticket = make_ticket(
            conn, subject="Invoice missing", requester_name="Cleo Customer", assigned_to=bo["id"]
        )
        shared = conn.execute(
            "INSERT INTO saved_replies (title, body, owner_id, created_by) VALUES "
            "('Greeting', 'Hello {{ customer.first_name }}, about {{ ticket.pid }}:', NULL, %s) "
            "RETURNING id",
            (ana["id"],),
        ).fetchone()[0]
    return {"ana": ana, "bo": bo, "ticket": ticket, "shared": shared}


def _listed(page, section_id: str) -> list[str]:
    section = page.html.find(id=section_id).parent
    return [tr.find("td").text for tr in section.select("tbody tr")]


def test_the_header_links_the_page(browser, desk):
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets")
    assert page.html.select_one('nav a[href="/saved-replies"]').text == "Saved replies"


def test_an_agent_adds_edits_and_deletes_its_own(browser, desk):
    log_in(browser, "bo@example.com")
    page = browser.get("/saved-replies")
    assert _listed(page, "shared-title") == ["Greeting"]
    # An AGENT cannot share, nor edit a shared one.
    form = form_with_action(page, "/saved-replies")
    assert "shared" not in form.fields
    assert page.html.find("a", href=f"/saved-replies/{desk['shared']}") is None
    form["title"] = "Closing"
    form["body"] = "Best,\n{{ agent.first_name }}"
    page = form.submit(status=303).follow()
    assert "Saved reply added." in page.text
    assert _listed(page, "personal-title") == ["Closing"]
    edit = page.click(href=r"/saved-replies/\d+$")
    form = form_with_action(edit, edit.request.path)
    assert form["body"].value == "Best,\n{{ agent.first_name }}"
    form["title"] = "Sign-off"
    page = form.submit(status=303).follow()
    assert _listed(page, "personal-title") == ["Sign-off"]
    edit = page.click(href=r"/saved-replies/\d+$")
    page = form_with_action(edit, f"{edit.request.path}/delete").submit(status=303).follow()
    assert "Saved reply deleted." in page.text
    assert _listed(page, "personal-title") == []
    browser.get(f"/saved-replies/{desk['shared']}", status=403)


def test_a_template_error_is_shown_by_the_field_with_the_text_kept(browser, desk):
    log_in(browser, "bo@example.com")
    form = form_with_action(browser.get("/saved-replies"), "/saved-replies")
    form["title"] = "Broken"
    form["body"] = "Hi\n{{ customer.name "
    page = form.submit(status=422)
    error = page.html.find(id="body-error").text
    assert error.startswith("Line 2:")
    assert page.html.find(id="body")["aria-invalid"] == "true"
    assert form_with_action(page, "/saved-replies")["body"].value == "Hi\n{{ customer.name "


def test_an_admin_shares_a_reply(browser, desk, db):
    log_in(browser, "ana@example.com")
    form = form_with_action(browser.get("/saved-replies"), "/saved-replies")
    form["title"] = "Apology"
    form["body"] = "Sorry, {{ customer.name }}."
    form["shared"] = True
    page = form.submit(status=303).follow()
    assert _listed(page, "shared-title") == ["Apology", "Greeting"]
    with db.transaction() as conn:
        owner = conn.execute("SELECT owner_id FROM saved_replies WHERE title = 'Apology'")
        assert owner.fetchone()[0] is None


def _insert_without_js(browser, page, pid, reply_id, typed):
    """What a browser without JavaScript sends for Insert: the reply form, to the button's
    formaction, urlencoded, without the browser's required-field check."""
    button = page.html.find(id="saved-reply-insert")
    assert button["formaction"] == f"/tickets/{pid}/saved-reply"
    assert button["formenctype"] == "application/x-www-form-urlencoded"
    assert button.has_attr("formnovalidate")
    form = form_with_action(page, f"/tickets/{pid}/messages")
    form["body"] = typed
    form["saved_reply_id"] = str(reply_id)
    form["status"] = "WAITING"
    fields = [(name, value) for name, value in form.submit_fields() if name != "attachments"]
    return browser.post(button["formaction"], fields, expect_errors=True)


def test_insert_without_javascript_fills_the_reply_box_keeping_what_was_typed(browser, desk):
    log_in(browser, "bo@example.com")
    pid = desk["ticket"]["pid"]
    page = browser.get(f"/tickets/{pid}")
    page = _insert_without_js(browser, page, pid, desk["shared"], "Thanks for writing.")
    assert page.status_int == 200
    form = form_with_action(page, f"/tickets/{pid}/messages")
    expected = f"Thanks for writing.\n\nHello Cleo, about {pid}:"
    assert form["body"].value == expected
    assert form["status"].value == "WAITING"  # the other choices kept
    assert form["saved_reply_id"].value == str(desk["shared"])
    # Sent as it is now, it is the reply.
    after = form.submit(status=303).follow()
    assert after.html.select(".message-body")[-1].text == expected


def test_insert_into_an_empty_box_is_the_reply_alone(browser, desk):
    log_in(browser, "bo@example.com")
    pid = desk["ticket"]["pid"]
    page = _insert_without_js(browser, browser.get(f"/tickets/{pid}"), pid, desk["shared"], "")
    body = form_with_action(page, f"/tickets/{pid}/messages")["body"].value
    assert body == f"Hello Cleo, about {pid}:"


def test_insert_of_a_reply_that_cannot_be_filled_in_keeps_the_text(browser, desk, db):
    with db.transaction() as conn:
        broken = conn.execute(
            "INSERT INTO saved_replies (title, body, owner_id, created_by) "
            "VALUES ('Old', '{{ customer.age }}', %s, %s) RETURNING id",
            (desk["bo"]["id"], desk["bo"]["id"]),
        ).fetchone()[0]
    log_in(browser, "bo@example.com")
    pid = desk["ticket"]["pid"]
    page = browser.get(f"/tickets/{pid}")
    refused = _insert_without_js(browser, page, pid, broken, "Kept.")
    assert refused.status_int == 422
    assert form_with_action(refused, f"/tickets/{pid}/messages")["body"].value == "Kept."
    assert "customer.age" in refused.html.find(id="reply-body-error").text


def test_insert_for_a_ticket_out_of_reach_is_404(browser, desk, db, make_staff):
    make_staff("AGENT", email="cy@example.com")
    log_in(browser, "bo@example.com")
    pid = desk["ticket"]["pid"]
    page = browser.get(f"/tickets/{pid}")
    form = form_with_action(page, f"/tickets/{pid}/messages")
    browser.reset()
    log_in(browser, "cy@example.com")
    token = form_with_action(browser.get("/saved-replies"), "/saved-replies")["csrf_token"].value
    browser.post(
        f"/tickets/{pid}/saved-reply",
        {"csrf_token": token, "saved_reply_id": str(desk["shared"]), "body": form["body"].value},
        status=404,
    )


# --- files (issue 24) ---------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def _stored(db) -> list[dict]:
    with db.transaction() as conn:
        cur = conn.execute("SELECT id, filename, storage_key FROM saved_reply_files ORDER BY id")
        return [{"id": i, "filename": f, "storage_key": k} for i, f, k in cur]


def _add_with_file(browser, title="Terms", name="terms.pdf", content=PDF, status=303):
    form = form_with_action(browser.get("/saved-replies"), "/saved-replies")
    assert form.enctype == "multipart/form-data"
    form["title"] = title
    form["body"] = "Our terms are attached, {{ customer.first_name }}."
    form["attachments"] = [webtest.Upload(name, content)]
    return form.submit(status=status)


def test_a_saved_reply_is_added_with_a_file_and_the_file_removed(browser, desk, db, settings):
    log_in(browser, "bo@example.com")
    page = _add_with_file(browser).follow()
    assert "Saved reply added." in page.text
    row = page.html.find(id="personal-title").parent.select_one("tbody tr")
    assert "Files: terms.pdf" in row.text
    [stored] = _stored(db)
    path = settings.upload_dir / stored["storage_key"]
    assert path.read_bytes() == PDF
    edit = page.click(href=r"/saved-replies/\d+$")
    link = edit.html.select_one(".saved-reply-files-list a[download]")
    assert link.text == "terms.pdf"
    assert browser.get(link["href"]).body == PDF
    remove = form_with_action(edit, f"{edit.request.path}/files/{stored['id']}/delete")
    assert remove.html.button.text == "Remove terms.pdf"  # named for a screen reader
    edit = remove.submit(status=303).follow()
    assert "File removed." in edit.text
    assert "No files" in edit.html.find(id="files-title").parent.text
    assert _stored(db) == []
    assert not path.exists()


def test_the_edit_form_adds_a_file_beside_those_held(browser, desk, db):
    log_in(browser, "bo@example.com")
    page = _add_with_file(browser).follow()
    edit = page.click(href=r"/saved-replies/\d+$")
    form = form_with_action(edit, edit.request.path)
    form["attachments"] = [webtest.Upload("notes.txt", b"Read me first.\n")]
    form.submit(status=303)
    assert [f["filename"] for f in _stored(db)] == ["terms.pdf", "notes.txt"]


def test_a_refused_file_keeps_the_text_and_saves_nothing(browser, desk, db):
    log_in(browser, "bo@example.com")
    page = _add_with_file(browser, name="page.html", content=b"<html><script>x</script>",
                          status=415)  # fmt: skip
    assert "page.html" in page.html.find(id="attachments-error").text
    form = form_with_action(page, "/saved-replies")
    assert form["title"].value == "Terms"
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM saved_replies").fetchone()[0] == 1  # Greeting
    assert _stored(db) == []


def _offered(page) -> list[tuple[str, bool, str]]:
    return [
        (box["value"], box.has_attr("checked"), box.parent.text.split("(")[0].strip())
        for box in page.html.select("#saved-reply-files input[name=saved_reply_file]")
    ]


def test_insert_without_javascript_offers_the_files_and_send_attaches_them(
    browser, desk, db, settings
):
    log_in(browser, "bo@example.com")
    _add_with_file(browser)
    with db.transaction() as conn:
        reply_id = conn.execute("SELECT id FROM saved_replies WHERE title = 'Terms'").fetchone()[0]
    [stored] = _stored(db)
    pid = desk["ticket"]["pid"]
    page = browser.get(f"/tickets/{pid}")
    assert _offered(page) == []
    page = _insert_without_js(browser, page, pid, reply_id, "")
    assert _offered(page) == [(str(stored["id"]), True, "Attach from the saved reply: terms.pdf")]
    # The box has its label: a screen reader names it.
    box = page.html.select_one("#saved-reply-files input")
    assert box.parent.name == "label"
    after = form_with_action(page, f"/tickets/{pid}/messages").submit(status=303).follow()
    assert after.html.select(".message")[-1].select_one(".attachments a[download]").text == (
        "terms.pdf"
    )
    with db.transaction() as conn:
        [(key,)] = conn.execute("SELECT storage_key FROM attachments").fetchall()
    assert key != stored["storage_key"]
    assert (settings.upload_dir / key).read_bytes() == PDF


def test_an_unchecked_file_is_not_attached_and_a_refused_reply_offers_them_again(browser, desk, db):
    log_in(browser, "bo@example.com")
    _add_with_file(browser)
    with db.transaction() as conn:
        reply_id = conn.execute("SELECT id FROM saved_replies WHERE title = 'Terms'").fetchone()[0]
    pid = desk["ticket"]["pid"]
    page = _insert_without_js(browser, browser.get(f"/tickets/{pid}"), pid, reply_id, "")
    # Refused (no text): the page comes back with the file still offered, checked.
    form = form_with_action(page, f"/tickets/{pid}/messages")
    form["body"] = " "
    refused = form.submit(status=422)
    assert [checked for _, checked, _ in _offered(refused)] == [True]
    form = form_with_action(refused, f"/tickets/{pid}/messages")
    form["body"] = "Without the file."
    form.get("saved_reply_file", index=0).checked = False
    form.submit(status=303)
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM attachments").fetchone()[0] == 0


def test_a_second_insert_keeps_the_files_of_the_first_offered(browser, desk, db):
    log_in(browser, "bo@example.com")
    _add_with_file(browser, title="Terms")
    _add_with_file(browser, title="Form", name="form.txt", content=b"Name:\nAddress:\n")
    with db.transaction() as conn:
        ids = dict(conn.execute("SELECT title, id FROM saved_replies").fetchall())
    pid = desk["ticket"]["pid"]
    page = _insert_without_js(browser, browser.get(f"/tickets/{pid}"), pid, ids["Terms"], "")
    page = _insert_without_js(browser, page, pid, ids["Form"], "")
    assert [label for _, _, label in _offered(page)] == [
        "Attach from the saved reply: terms.pdf",
        "Attach from the saved reply: form.txt",
    ]
    form_with_action(page, f"/tickets/{pid}/messages").submit(status=303)
    with db.transaction() as conn:
        names = [r[0] for r in conn.execute("SELECT filename FROM attachments ORDER BY id")]
    assert names == ["terms.pdf", "form.txt"]
