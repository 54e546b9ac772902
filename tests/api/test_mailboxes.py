"""The Mailboxes API (ADMIN): add, list, edit, delete, and the connection test against a
real Dovecot (tests/imapserver.py), each failing stage named."""

from __future__ import annotations

import pytest
from psycopg.rows import dict_row

from supportdesk.dev.embedded import free_port
from supportdesk.mail.mailboxes.secrets import SecretBox
from tests.factories import make_ticket


@pytest.fixture
def admin(make_staff, bearer):
    return bearer(make_staff("ADMIN"))


def add(client, admin, status=201, **over):
    body = {
        "address": "support@example.com",
        "imap_host": "imap.example.com",
        "password": "imap secret",
    } | over
    body = {name: value for name, value in body.items() if value is not None}  # None: absent
    return client.post_json("/api/mailboxes", body, headers=admin, status=status)


def stored(db, mailbox_id: int) -> dict:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM mailboxes WHERE id = %s", (mailbox_id,)).fetchone()


def test_a_mailbox_is_added_with_defaults_and_its_password_sealed_never_returned(
    client, admin, db, settings
):
    resp = add(client, admin, processed="move:Done")
    mailbox = resp.json["mailbox"]
    assert resp.headers["Location"] == f"/api/mailboxes/{mailbox['id']}"
    assert mailbox["imap_port"] == 993
    assert mailbox["imap_security"] == "SSL"
    assert mailbox["imap_folder"] == "INBOX"
    assert mailbox["username"] == "support@example.com"
    assert mailbox["processed"] == "MOVE:Done"
    assert mailbox["status"] == "NEW"
    assert mailbox["has_password"] is True
    for answer in (resp, client.get("/api/mailboxes", headers=admin)):
        assert "imap secret" not in answer.text
        assert "secret_encrypted" not in answer.text
    row = stored(db, mailbox["id"])
    assert row["secret_encrypted"] != "imap secret"
    assert SecretBox(settings).open(row["secret_encrypted"]) == "imap secret"


def test_a_provider_fills_in_its_server(client, admin, db):
    mailbox = add(
        client, admin, imap_host=None, auth="OAUTH2", oauth_provider="MICROSOFT", password=None
    )
    box = mailbox.json["mailbox"]
    assert (box["imap_host"], box["imap_port"]) == ("outlook.office365.com", 993)
    assert box["trusted_authserv_ids"] == []  # the provider's (sender_auth's defaults)
    assert box["oauth_connected"] is False
    assert box["has_password"] is False


def test_add_without_fields_it_needs_names_each(client, admin):
    errors = add(client, admin, status=422, password=None, imap_security="NONE").json["error"]
    assert "password" in errors["details"]
    errors = add(client, admin, status=422, auth="OAUTH2", password=None).json["error"]
    assert "oauth_provider" in errors["details"]
    errors = add(client, admin, status=422, processed="DELETE", imap_port=0).json["error"]
    assert set(errors["details"]) == {"processed", "imap_port"}
    assert errors["request_id"]


def test_plain_text_is_refused_in_production(settings, db, redis_client, make_staff, bearer):
    import webtest

    from supportdesk.core.redis_client import make_redis
    from supportdesk.web.app import create_app

    production = settings.replace(environment="production", public_base_url="https://x.example")
    client = webtest.TestApp(create_app(production, db=db, redis_client=make_redis(settings)))
    resp = add(client, bearer(make_staff("ADMIN")), status=422, imap_security="NONE")
    assert "imap_security" in resp.json["error"]["details"]


def test_a_second_mailbox_with_the_same_address_is_a_conflict(client, admin):
    add(client, admin)
    resp = add(client, admin, status=409, address="SUPPORT@example.com")
    assert resp.json["error"]["details"] == {"address": "Already in use."}


def test_an_edit_keeps_the_password_unless_given_and_clears_the_smtp_server(
    client, admin, db, settings
):
    mailbox = add(client, admin, smtp_host="smtp.example.com", smtp_password="smtp secret")
    box = mailbox.json["mailbox"]
    assert (box["smtp_port"], box["smtp_security"], box["has_smtp_password"]) == (
        587,
        "STARTTLS",
        True,
    )
    url = f"/api/mailboxes/{box['id']}"
    before = stored(db, box["id"])
    changed = client.patch_json(url, {"imap_folder": "Support"}, headers=admin).json["mailbox"]
    assert changed["imap_folder"] == "Support"
    after = stored(db, box["id"])
    assert after["secret_encrypted"] == before["secret_encrypted"]
    assert after["updated_at"] > before["updated_at"]  # its fetcher connects again
    client.patch_json(url, {"password": "new secret", "smtp_host": None}, headers=admin)
    after = stored(db, box["id"])
    assert SecretBox(settings).open(after["secret_encrypted"]) == "new secret"
    assert after["smtp_host"] is None
    assert after["smtp_secret_encrypted"] is None
    assert client.patch_json(url, {}, headers=admin, status=422).json["error"]["details"]
    client.patch_json("/api/mailboxes/999999", {"imap_folder": "X"}, headers=admin, status=404)


def test_delete_stops_fetching_and_keeps_the_tickets(client, admin, db):
    box = add(client, admin).json["mailbox"]
    with db.transaction() as conn:
        ticket = make_ticket(conn, mailbox_id=box["id"])
    shown = client.get(f"/api/tickets/{ticket['pid']}", headers=admin).json["ticket"]
    assert shown["mailbox_id"] == box["id"]
    client.delete(f"/api/mailboxes/{box['id']}", headers=admin, status=204)
    client.get(f"/api/mailboxes/{box['id']}", headers=admin, status=404)
    shown = client.get(f"/api/tickets/{ticket['pid']}", headers=admin).json["ticket"]
    assert shown["mailbox_id"] is None
    client.delete(f"/api/mailboxes/{box['id']}", headers=admin, status=404)


# --- the connection test, against the real Dovecot -----------------------------------------


@pytest.fixture
def trusted(monkeypatch, dovecot):
    """The system's certificate store is the test server's own certificate (SSL_CERT_FILE,
    which ssl.create_default_context reads, as in production)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert_file))


def test_the_connection_test_says_what_the_server_showed(
    client, admin, dovecot, imap_user, trusted
):
    dovecot.append(imap_user, b"Subject: hi\r\nFrom: a@example.org\r\n\r\nhello\r\n")
    box = add(
        client, admin, imap_host=dovecot.host, imap_port=dovecot.ssl_port, username=imap_user,
        password="secret",
    ).json["mailbox"]  # fmt: skip
    seen = client.post(f"/api/mailboxes/{box['id']}/test", headers=admin).json
    assert seen["folder"] == "INBOX"
    assert seen["messages"] == 1
    assert seen["idle"] is True
    assert seen["uidvalidity"] > 0


@pytest.mark.parametrize(
    ("over", "stage", "says"),
    [
        ({"imap_host": "no-such-host.invalid"}, "connect", "was not found in DNS"),
        ({"imap_port": "closed"}, "connect", "refused the connection"),
        ({"untrusted": True}, "tls", "TLS certificate"),
        ({"password": "wrong"}, "login", "refused the login"),
        ({"imap_folder": "Nowhere"}, "folder", "could not be opened"),
        ({"imap_port": "plain", "imap_security": "STARTTLS", "untrusted": True}, "tls", "TLS"),
    ],
)
def test_the_connection_test_names_the_stage_that_failed(
    client, admin, dovecot, imap_user, monkeypatch, over, stage, says
):
    if not over.pop("untrusted", False):
        monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cert_file))
    port = {"closed": free_port(), "plain": dovecot.port}.get(over.get("imap_port"))
    fields = {
        "imap_host": dovecot.host,
        "imap_port": dovecot.ssl_port,
        "username": imap_user,
        "password": "secret",
    } | over
    if port:
        fields["imap_port"] = port
    box = add(client, admin, **fields).json["mailbox"]
    resp = client.post(f"/api/mailboxes/{box['id']}/test", headers=admin, status=422)
    error = resp.json["error"]
    assert list(error["details"]) == [stage]
    assert says in error["message"]
    assert "secret" not in resp.text
    assert error["request_id"] == resp.headers["X-Request-ID"]
