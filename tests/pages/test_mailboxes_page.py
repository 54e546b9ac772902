"""The Mailboxes page (ADMIN): the list with status, last error and last fetch; add, edit,
delete, "Test connection" against the real Dovecot, and the OAuth "Connect" link."""

from __future__ import annotations

import pytest
import webtest

from tests.pages.test_ticket_pages import form_with_action, log_in


@pytest.fixture
def browser(app) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})


@pytest.fixture
def admin(make_staff, browser):
    staff = make_staff("ADMIN", email="ana@example.com")
    log_in(browser, staff["email"])
    return staff


def add(browser, **fields) -> webtest.TestResponse:
    form = form_with_action(browser.get("/mailboxes"), "/mailboxes")
    for name, value in fields.items():
        form[name] = value
    return form.submit()


def test_staff_navigation_links_the_page_for_admins_only(browser, make_staff, admin):
    assert 'href="/mailboxes"' in browser.get("/tickets").text
    agent = webtest.TestApp(browser.app, extra_environ={"HTTP_ACCEPT": "text/html"})
    log_in(agent, make_staff("AGENT", email="bo@example.com")["email"])
    assert 'href="/mailboxes"' not in agent.get("/tickets").text
    agent.get("/mailboxes", status=403)


def test_an_admin_adds_a_mailbox_and_sees_its_status(browser, admin, db):
    page = add(
        browser,
        address="help@example.com",
        imap_host="imap.example.com",
        password="a secret pw",
        processed="MOVE:Imported",
    ).follow()
    assert "Mailbox added" in page.text
    assert "help@example.com" in page.text
    assert "imap.example.com:993" in page.text
    assert "NEW" in page.text
    assert "never" in page.text
    assert "a secret pw" not in page.text
    with db.transaction() as conn:
        conn.execute(
            "UPDATE mailboxes SET status = 'ERROR', last_error = 'The server refused the login'"
        )
    page = browser.get("/mailboxes")
    assert "ERROR" in page.text
    assert "The server refused the login" in page.text


def test_a_refused_form_says_why_and_keeps_what_was_typed(browser, admin):
    page = form_with_action(browser.get("/mailboxes"), "/mailboxes")
    page["address"] = "help@example.com"
    page["imap_port"] = "70000"
    refused = page.submit(status=422)
    assert "Use a port from 1 to 65535." in refused.text
    assert 'value="help@example.com"' in refused.text


def test_an_admin_edits_and_deletes_a_mailbox(browser, admin, db):
    add(browser, address="help@example.com", imap_host="imap.example.com", password="pw1")
    with db.transaction() as conn:
        mailbox_id, sealed = conn.execute("SELECT id, secret_encrypted FROM mailboxes").fetchone()
    action = f"/mailboxes/{mailbox_id}"
    form = form_with_action(browser.get(action), action)
    assert form["imap_host"].value == "imap.example.com"
    form["imap_folder"] = "Support"
    page = form.submit().follow()
    assert "Saved." in page.text
    with db.transaction() as conn:
        row = conn.execute("SELECT imap_folder, secret_encrypted FROM mailboxes").fetchone()
    folder, kept = row
    assert (folder, kept) == ("Support", sealed)  # an empty password field keeps it
    form = form_with_action(browser.get(action), f"{action}/delete")
    page = form.submit().follow()
    assert "Mailbox deleted" in page.text
    assert "help@example.com" not in page.text.split("Add a mailbox")[0]


def test_an_oauth_mailbox_links_to_its_provider(browser, admin):
    add(browser, address="help@example.com", auth="OAUTH2", oauth_provider="GOOGLE")
    page = browser.get("/mailboxes")
    assert "imap.gmail.com:993" in page.text
    link = page.html.find("a", string="Connect with Google")
    assert link["href"].endswith("/oauth/start")


def test_test_connection_shows_what_the_server_said(
    browser, admin, db, dovecot, imap_user, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert_file))
    add(
        browser,
        address="help@example.com",
        imap_host=dovecot.host,
        imap_port=str(dovecot.ssl_port),
        username=imap_user,
        password="secret",
    )
    with db.transaction() as conn:
        (mailbox_id,) = conn.execute("SELECT id FROM mailboxes").fetchone()
    action = f"/mailboxes/{mailbox_id}/test"
    page = form_with_action(browser.get("/mailboxes"), action).submit()
    assert "connected. Folder INBOX holds 0 messages" in page.text
    assert "IDLE yes" in page.text
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent")
    page = form_with_action(browser.get("/mailboxes"), action).submit(status=422)
    assert "TLS certificate" in page.text


@pytest.mark.parametrize(
    ("notice", "says"),
    [
        ("connected", "Mailbox connected"),
        ("deleted", "Mailbox deleted"),
        ("added-1", "Mailbox added"),
    ],
)
def test_each_way_back_to_the_page_says_what_happened(browser, admin, notice, says):
    """The OAuth callback comes back with notice=connected: not "Mailbox added"."""
    text = browser.get(f"/mailboxes?notice={notice}").text
    assert says in text
    others = {"Mailbox connected", "Mailbox deleted", "Mailbox added"} - {says}
    assert not any(other in text for other in others)


def test_a_ticket_page_names_the_mailbox_it_came_in_on(browser, admin, db):
    """Teams with several addresses see which one a ticket answers from."""
    from tests.factories import make_ticket

    with db.transaction() as conn:
        [mailbox_id] = conn.execute(
            "INSERT INTO mailboxes (address, imap_host, imap_port, username) "
            "VALUES ('billing@example.com', 'imap.example.com', 993, 'billing') RETURNING id"
        ).fetchone()
        mailed = make_ticket(conn, mailbox_id=mailbox_id)
        plain = make_ticket(conn)
    page = browser.get(f"/tickets/{mailed['pid']}")
    assert [dd.text for dd in page.html.select("dt:-soup-contains('Mailbox') + dd")] == [
        "billing@example.com"
    ]
    assert "Mailbox" not in browser.get(f"/tickets/{plain['pid']}").html.select_one("dl").text
