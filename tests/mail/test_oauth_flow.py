"""Connecting a mailbox with OAuth 2.0: the whole flow against the tests' own authorization
server (tests/oauthserver.py), which checks the PKCE challenge and verifier itself."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import webtest

from supportdesk.mail.mailboxes.oauth import STATE_KEY
from supportdesk.mail.mailboxes.secrets import SecretBox
from tests.conftest import shared_app
from tests.oauthserver import CLIENT_ID, insert_mailbox, mailbox_row, oauth_settings

HTML = {"Accept": "text/html"}


@pytest.fixture
def desk(settings, db, oauth):
    """The app with the CUSTOM provider pointing at the tests' authorization server."""
    configured = oauth_settings(settings, oauth)
    return configured, shared_app(configured, db)


@pytest.fixture
def admin_browser(desk, make_staff, tokens):
    """browser(user=None) -> a WebTest client logged in (session cookie) as an ADMIN."""

    def browser(user=None) -> webtest.TestApp:
        client = webtest.TestApp(desk[1])
        token, _ = tokens.issue(user or make_staff("ADMIN"))
        client.set_cookie("session", token)
        return client

    return browser


@pytest.fixture
def mailbox(db):
    with db.transaction() as conn:
        return insert_mailbox(conn)


def _start(client, mailbox_id: int) -> str:
    resp = client.get(f"/mailboxes/{mailbox_id}/oauth/start", headers=HTML, status=302)
    return resp.headers["Location"]


def _back(client, callback_url: str, status: int = 303):
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}", headers=HTML, status=status)


def test_an_admin_connects_a_mailbox_with_pkce_and_state(desk, admin_browser, mailbox, oauth, db):
    settings, _ = desk
    client = admin_browser()
    authorize = _start(client, mailbox["id"])
    asked = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(oauth.authorize_url + "?")
    assert asked["client_id"] == [CLIENT_ID]
    assert asked["redirect_uri"] == ["http://127.0.0.1:8000/oauth/callback"]
    assert asked["code_challenge_method"] == ["S256"]
    assert asked["login_hint"] == ["support@acme.example"]
    assert "code_verifier" not in asked  # the verifier never leaves the desk before the code

    back = _back(client, oauth.accept(authorize, "support@acme.example"))
    assert back.headers["Location"] == f"/mailboxes?notice=connected&mailbox={mailbox['id']}"

    # The server checked the verifier against the challenge it was given.
    [exchange] = oauth.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["code_verifier"]
    row = mailbox_row(db, mailbox["id"])
    box = SecretBox(settings)
    assert row["status"] == "OK"
    assert row["last_error"] is None
    assert oauth.refresh[box.open(row["secret_encrypted"])] == "support@acme.example"
    assert oauth.is_active(box.open(row["access_token_encrypted"])).username == (
        "support@acme.example"
    )
    assert row["access_token_expires_at"] is not None
    assert "support@acme.example" not in row["secret_encrypted"]  # sealed, not in clear


def test_the_microsoft_path_asks_its_scopes_with_its_own_settings(
    settings, db, oauth, make_staff, tokens
):
    configured = oauth_settings(settings, oauth, provider="MICROSOFT")
    client = webtest.TestApp(shared_app(configured, db))
    client.set_cookie("session", tokens.issue(make_staff("ADMIN"))[0])
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, oauth_provider="MICROSOFT")
    authorize = _start(client, mailbox["id"])
    assert parse_qs(urlsplit(authorize).query)["scope"] == [
        "offline_access https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send"
    ]
    _back(client, oauth.accept(authorize, "support@acme.example"))
    assert mailbox_row(db, mailbox["id"])["status"] == "OK"


def test_a_wrong_pkce_verifier_is_refused_by_the_server(
    desk, admin_browser, mailbox, oauth, db, redis_client
):
    """The server, not the desk, verifies PKCE: a verifier that does not match the
    challenge (here changed in the desk's stored state) gets no tokens."""
    client = admin_browser()
    authorize = _start(client, mailbox["id"])
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    pending = json.loads(redis_client.get(STATE_KEY + state))
    pending["verifier"] = "x" * 64
    redis_client.set(STATE_KEY + state, json.dumps(pending))
    page = _back(client, oauth.accept(authorize, "support@acme.example"), status=400)
    assert "PKCE verification failed" in page.text
    assert mailbox_row(db, mailbox["id"])["status"] == "NEW"


def test_a_state_is_used_once(desk, admin_browser, mailbox, oauth, db):
    client = admin_browser()
    callback = oauth.accept(_start(client, mailbox["id"]), "support@acme.example")
    _back(client, callback)
    again = _back(client, callback, status=400)
    assert "expired or was already used" in again.text
    assert again.headers["X-Request-ID"] in again.text
    assert len(oauth.token_requests) == 1  # the second answer never reached the provider


def test_a_state_that_is_not_ours_is_refused(desk, admin_browser, mailbox, oauth):
    client = admin_browser()
    callback = oauth.accept(_start(client, mailbox["id"]), "support@acme.example")
    forged = callback.replace("state=", "state=forged")
    assert "expired or was already used" in _back(client, forged, status=400).text
    page = client.get("/oauth/callback?code=abc", headers=HTML, status=400)
    assert "has no state" in page.text
    assert oauth.token_requests == []


def test_a_state_of_another_session_is_refused(desk, admin_browser, mailbox, oauth, db):
    """The answer must come back to the session that started the flow: another ADMIN (or
    a victim lured to an attacker's callback link) cannot complete it."""
    started_by = admin_browser()
    callback = oauth.accept(_start(started_by, mailbox["id"]), "attacker@acme.example")
    page = _back(admin_browser(), callback, status=400)
    assert "another session" in page.text
    assert mailbox_row(db, mailbox["id"])["status"] == "NEW"
    assert oauth.token_requests == []


def test_a_refusal_at_the_provider_is_shown(desk, admin_browser, mailbox, oauth, db):
    client = admin_browser()
    page = _back(client, oauth.deny(_start(client, mailbox["id"])), status=400)
    assert "access_denied" in page.text
    assert "permissions were not granted" in page.text
    assert "Start again from the Mailboxes page" in page.text
    assert mailbox_row(db, mailbox["id"])["status"] == "NEW"


def test_a_token_endpoint_that_is_down_is_a_page_not_a_500(desk, admin_browser, mailbox, oauth, db):
    client = admin_browser()
    callback = oauth.accept(_start(client, mailbox["id"]), "support@acme.example")
    oauth.down = True
    page = _back(client, callback, status=502)
    assert "could not be reached" in page.text
    assert page.headers["X-Request-ID"] in page.text
    assert mailbox_row(db, mailbox["id"])["status"] == "NEW"


def test_no_refresh_token_means_not_connected(desk, admin_browser, mailbox, oauth, db):
    oauth.issue_refresh_token = False
    client = admin_browser()
    page = _back(client, oauth.accept(_start(client, mailbox["id"]), "support@acme.example"), 400)
    assert "no refresh token" in page.text
    assert mailbox_row(db, mailbox["id"])["secret_encrypted"] is None


def test_an_unconfigured_provider_names_the_settings(settings, db, make_staff, tokens):
    client = webtest.TestApp(shared_app(settings, db))
    client.set_cookie("session", tokens.issue(make_staff("ADMIN"))[0])
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, oauth_provider="GOOGLE")
    page = client.get(f"/mailboxes/{mailbox['id']}/oauth/start", headers=HTML, status=409)
    assert "OAUTH_GOOGLE_CLIENT_ID" in page.text


def test_a_password_mailbox_has_no_oauth_flow(desk, admin_browser, db):
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn, auth="PASSWORD", address="plain@acme.example")
    page = admin_browser().get(f"/mailboxes/{mailbox['id']}/oauth/start", headers=HTML, status=409)
    assert "password" in page.text
