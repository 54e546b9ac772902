"""The audit log's rows for changes to accounts and mailboxes (DESIGN.md section 13): each
written with the change, naming who did it, to what, from which address, in which request,
and never a secret."""

from __future__ import annotations

import pytest
import webtest
from psycopg.rows import dict_row

from tests.conftest import STAFF_PASSWORD, shared_app
from tests.oauthserver import insert_mailbox, oauth_settings

ADDRESS = "203.0.113.7"
FROM = {"REMOTE_ADDR": ADDRESS}


def audit_rows(db, action: str | None = None) -> list[dict]:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT action::text, actor_id, subject, target_type, target_id, host(client_ip) "
            "AS client_ip, request_id, data FROM audit_log ORDER BY id"
        ).fetchall()
    return [row for row in rows if action is None or row["action"] == action]


def only_row(db, action: str) -> dict:
    [row] = audit_rows(db, action)
    return row


def by_request(resp: webtest.TestResponse, actor: dict, target: tuple[str, int]) -> dict:
    """What every row written in a request says of where it came from."""
    return {
        "actor_id": actor["id"],
        "subject": None,
        "target_type": target[0],
        "target_id": str(target[1]),
        "client_ip": ADDRESS,
        "request_id": resp.headers["X-Request-ID"],
    }


def within(row: dict, expected: dict) -> bool:
    return {key: row[key] for key in expected} == expected


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", name="Ana Admin", email="ana@example.com")


# --- staff accounts --------------------------------------------------------------------------


def test_creating_a_user_records_who_made_which_account(client, bearer, admin, db):
    body = {"email": "bo@example.com", "name": "Bo", "role": "AGENT", "password": "a new password"}
    resp = client.post_json("/api/users", body, headers=bearer(admin), extra_environ=FROM)
    row = only_row(db, "USER_CREATED")
    assert within(row, by_request(resp, admin, ("user", resp.json["user"]["id"])))
    assert row["data"] == {"role": "AGENT"}
    assert "a new password" not in str(audit_rows(db))


def test_a_refused_creation_records_nothing(client, bearer, make_staff, db):
    sub = make_staff("SUB_ADMIN")
    body = {"email": "bo@example.com", "name": "Bo", "role": "ADMIN", "password": "a new password"}
    client.post_json("/api/users", body, headers=bearer(sub), status=403)
    assert audit_rows(db) == []


def test_the_staff_page_records_its_creation_too(client, tokens, admin, db):
    token, session = tokens.issue(admin)
    client.set_cookie("session", token)
    form = {
        "email": "cy@example.com",
        "name": "Cy",
        "role": "SUB_ADMIN",
        "password": "a new password",
        "csrf_token": tokens.csrf_token(session),
    }
    resp = client.post("/users", form, extra_environ=FROM, status=303)
    row = only_row(db, "USER_CREATED")
    assert row["actor_id"] == admin["id"]
    assert row["request_id"] == resp.headers["X-Request-ID"]
    assert row["data"] == {"role": "SUB_ADMIN"}


def test_create_admin_on_the_command_line_is_the_systems_doing(run_cli, db):
    done = run_cli("create-admin", "--email", "root@example.com", "--name", "Root",
                   "--password", "a long admin password")  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = only_row(db, "USER_CREATED")
    with db.transaction() as conn:
        [user_id] = conn.execute("SELECT id FROM users WHERE email = 'root@example.com'").fetchone()
    assert row == {
        "action": "USER_CREATED",
        "actor_id": None,
        "subject": None,
        "target_type": "user",
        "target_id": str(user_id),
        "client_ip": None,
        "request_id": None,
        "data": {"role": "ADMIN"},
    }


def test_a_role_change_records_from_and_to(client, bearer, admin, make_staff, db):
    agent = make_staff("AGENT")
    resp = client.patch_json(
        f"/api/users/{agent['id']}",
        {"role": "SUB_ADMIN"},
        headers=bearer(admin),
        extra_environ=FROM,
    )
    row = only_row(db, "ROLE_CHANGED")
    assert within(row, by_request(resp, admin, ("user", agent["id"])))
    assert row["data"] == {"from": "AGENT", "to": "SUB_ADMIN"}
    assert [r["action"] for r in audit_rows(db)] == ["ROLE_CHANGED"]


def test_the_same_role_again_or_a_new_name_records_nothing(client, bearer, admin, make_staff, db):
    agent = make_staff("AGENT")
    client.patch_json(f"/api/users/{agent['id']}", {"role": "AGENT"}, headers=bearer(admin))
    client.patch_json(f"/api/users/{agent['id']}", {"name": "Renamed"}, headers=bearer(admin))
    assert audit_rows(db) == []


def test_deactivating_and_activating_are_recorded(client, bearer, admin, make_staff, db):
    agent = make_staff("AGENT")
    url = f"/api/users/{agent['id']}"
    off = client.patch_json(url, {"is_active": False}, headers=bearer(admin), extra_environ=FROM)
    on = client.patch_json(url, {"is_active": True}, headers=bearer(admin), extra_environ=FROM)
    deactivated, activated = only_row(db, "USER_DEACTIVATED"), only_row(db, "USER_ACTIVATED")
    assert within(deactivated, by_request(off, admin, ("user", agent["id"])))
    assert within(activated, by_request(on, admin, ("user", agent["id"])))
    assert deactivated["data"] == activated["data"] == {}


def test_a_refused_deactivation_records_nothing(client, bearer, admin, db):
    url = f"/api/users/{admin['id']}"
    client.patch_json(url, {"is_active": False}, headers=bearer(admin), status=403)
    assert audit_rows(db) == []


def test_one_change_of_role_and_activation_records_both(client, bearer, admin, make_staff, db):
    agent = make_staff("AGENT", is_active=False)
    change = {"role": "ADMIN", "is_active": True}
    client.patch_json(f"/api/users/{agent['id']}", change, headers=bearer(admin))
    assert [r["action"] for r in audit_rows(db)] == ["ROLE_CHANGED", "USER_ACTIVATED"]


def test_a_password_set_by_a_manager_is_recorded_without_it(client, bearer, admin, make_staff, db):
    agent = make_staff("AGENT")
    resp = client.patch_json(
        f"/api/users/{agent['id']}",
        {"password": "another long one"},
        headers=bearer(admin),
        extra_environ=FROM,
    )
    row = only_row(db, "PASSWORD_CHANGED")
    assert within(row, by_request(resp, admin, ("user", agent["id"])))
    assert row["data"] == {"by": "manager"}
    assert "another long one" not in str(audit_rows(db))


def test_ones_own_password_change_is_recorded(client, bearer, admin, db):
    body = {"current_password": STAFF_PASSWORD, "new_password": "a brand new password"}
    resp = client.post_json("/api/auth/password", body, headers=bearer(admin), extra_environ=FROM)
    row = only_row(db, "PASSWORD_CHANGED")
    assert within(row, by_request(resp, admin, ("user", admin["id"])))
    assert row["data"] == {"by": "self"}
    assert "a brand new password" not in str(row)


def test_a_wrong_current_password_records_no_change(client, bearer, admin, db):
    body = {"current_password": "not my password", "new_password": "a brand new password"}
    client.post_json("/api/auth/password", body, headers=bearer(admin), status=422)
    assert audit_rows(db, "PASSWORD_CHANGED") == []


# --- mailboxes -------------------------------------------------------------------------------

MAILBOX = {
    "address": "support@example.com",
    "imap_host": "imap.example.com",
    "password": "imap secret",
    "smtp_host": "smtp.example.com",
    "smtp_password": "smtp secret",
}


def test_a_mailbox_added_changed_and_deleted_is_recorded_without_its_secrets(
    client, bearer, admin, db
):
    admin_headers = bearer(admin)
    added = client.post_json("/api/mailboxes", MAILBOX, headers=admin_headers, extra_environ=FROM)
    box_id = added.json["mailbox"]["id"]
    changed = client.patch_json(
        f"/api/mailboxes/{box_id}",
        {"display_name": "Support", "password": "new imap secret", "imap_port": 993},
        headers=admin_headers,
        extra_environ=FROM,
    )
    deleted = client.delete(f"/api/mailboxes/{box_id}", headers=admin_headers, extra_environ=FROM)

    created, updated, gone = (
        only_row(db, "MAILBOX_CREATED"),
        only_row(db, "MAILBOX_UPDATED"),
        only_row(db, "MAILBOX_DELETED"),
    )
    assert within(created, by_request(added, admin, ("mailbox", box_id)))
    assert created["data"] == {"address": "support@example.com", "auth": "PASSWORD"}
    assert within(updated, by_request(changed, admin, ("mailbox", box_id)))
    # The port was 993 already: only what changed is named, a new secret by its field.
    assert updated["data"] == {
        "address": "support@example.com",
        "changed": ["display_name", "password"],
    }
    assert within(gone, by_request(deleted, admin, ("mailbox", box_id)))
    assert gone["data"] == {"address": "support@example.com"}
    written = str(audit_rows(db))
    for secret in ("imap secret", "smtp secret", "new imap secret"):
        assert secret not in written
    assert "gAAAA" not in written  # nor a sealed one (Fernet's tokens start so)


def test_an_edit_that_changes_nothing_and_a_missing_mailbox_record_nothing(
    client, bearer, admin, db
):
    box_id = client.post_json("/api/mailboxes", MAILBOX, headers=bearer(admin)).json["mailbox"][
        "id"
    ]
    client.patch_json(f"/api/mailboxes/{box_id}", {"imap_port": 993}, headers=bearer(admin))
    client.delete("/api/mailboxes/999", headers=bearer(admin), status=404)
    assert [r["action"] for r in audit_rows(db)] == ["MAILBOX_CREATED"]


def test_the_mailbox_pages_record_their_changes(client, tokens, admin, db):
    token, session = tokens.issue(admin)
    client.set_cookie("session", token)
    csrf = tokens.csrf_token(session)
    form = {
        "address": "help@example.com",
        "imap_host": "imap.example.com",
        "password": "imap secret",
        "is_active": "on",
        "csrf_token": csrf,
    }
    client.post("/mailboxes", form, extra_environ=FROM, status=303)
    [box_id] = [int(r["target_id"]) for r in audit_rows(db, "MAILBOX_CREATED")]
    edit = form | {"display_name": "Help", "password": ""}
    client.post(f"/mailboxes/{box_id}", edit, extra_environ=FROM, status=303)
    client.post(f"/mailboxes/{box_id}/delete", {"csrf_token": csrf}, status=303)
    rows = audit_rows(db)
    assert [r["action"] for r in rows] == ["MAILBOX_CREATED", "MAILBOX_UPDATED", "MAILBOX_DELETED"]
    assert rows[1]["data"]["changed"] == ["display_name"]  # a blank password keeps the stored one
    assert {r["actor_id"] for r in rows} == {admin["id"]}


def test_connecting_a_mailbox_with_oauth_is_recorded(settings, db, oauth, admin, tokens):
    from urllib.parse import urlsplit

    configured = oauth_settings(settings, oauth)
    client = webtest.TestApp(shared_app(configured, db))
    client.set_cookie("session", tokens.issue(admin)[0])
    with db.transaction() as conn:
        mailbox = insert_mailbox(conn)
    html = {"Accept": "text/html"}
    start = client.get(f"/mailboxes/{mailbox['id']}/oauth/start", headers=html, status=302)
    callback = urlsplit(oauth.accept(start.headers["Location"], "support@acme.example"))
    back = client.get(
        f"{callback.path}?{callback.query}", headers=html, extra_environ=FROM, status=303
    )
    row = only_row(db, "MAILBOX_AUTHORIZED")
    assert within(row, by_request(back, admin, ("mailbox", mailbox["id"])))
    assert row["data"] == {"address": mailbox["address"], "provider": "CUSTOM"}


def test_a_refused_oauth_answer_records_nothing(settings, db, oauth, admin, tokens):
    configured = oauth_settings(settings, oauth)
    client = webtest.TestApp(shared_app(configured, db))
    client.set_cookie("session", tokens.issue(admin)[0])
    client.get("/oauth/callback?code=abc", headers={"Accept": "text/html"}, status=400)
    assert audit_rows(db) == []
