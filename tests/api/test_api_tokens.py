"""Personal API tokens (DESIGN.md section 13): made, used as Bearer only, checked against the
user's row at each request, expired, revoked, and audited."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

import pytest
import webtest

from tests.clock import Clock
from tests.conftest import shared_app

CLOCK = Clock()  # the module's, set back to now for each test


@pytest.fixture
def clock() -> Clock:
    return CLOCK.reset()


@pytest.fixture
def client(settings, db, redis_client, clock) -> webtest.TestApp:
    return webtest.TestApp(shared_app(settings, db, clock=clock))


@pytest.fixture
def admin(make_staff):
    return make_staff("ADMIN", email="ada@example.com", name="Ada Admin")


def make_token(client, bearer, user, **body) -> dict:
    resp = client.post_json("/api/me/tokens", {"name": "CI"} | body, headers=bearer(user))
    assert resp.status_int == 201
    return resp.json


def with_token(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_row(db, token_id: int) -> dict | None:
    with db.transaction() as conn:
        cur = conn.execute("SELECT * FROM api_tokens WHERE id = %s", (token_id,))
        row = cur.fetchone()
        return (
            None if row is None else dict(zip([c.name for c in cur.description], row, strict=True))
        )


def test_a_token_is_shown_once_and_stored_as_its_hash(client, bearer, admin, db):
    made = make_token(client, bearer, admin, name="Zapier")
    token = made["token"]
    assert token.startswith("sd_pat_")
    assert len(token) > 40
    assert made["api_token"]["name"] == "Zapier"
    assert made["api_token"]["prefix"] == token[:11]
    row = token_row(db, made["api_token"]["id"])
    assert bytes(row["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert token not in repr(row)
    listed = client.get("/api/me/tokens", headers=bearer(admin)).json["items"]
    assert listed == [made["api_token"]]
    assert token not in client.get("/api/me/tokens", headers=bearer(admin)).text


def test_a_token_acts_as_its_user(client, bearer, admin):
    token = make_token(client, bearer, admin)["token"]
    me = client.get("/api/auth/me", headers=with_token(token)).json
    assert me["user"]["email"] == "ada@example.com"
    client.get("/api/users", headers=with_token(token), status=200)  # an ADMIN's route


def test_a_token_needs_no_csrf_token_to_change_things(client, bearer, admin):
    token = make_token(client, bearer, admin)["token"]
    client.post_json(
        "/api/tickets",
        {"to": "cleo@example.org", "subject": "Hello", "body": "Hi."},
        headers=with_token(token),
        status=201,
    )
    client.put_json(
        "/api/me/notifications",
        {"new_ticket": False, "customer_reply": True, "assigned": True, "mentioned": True},
        headers=with_token(token),
        status=200,
    )


def test_a_token_is_never_accepted_as_the_session_cookie(client, bearer, admin, settings, db):
    token = make_token(client, bearer, admin)["token"]
    cookie_client = webtest.TestApp(client.app)
    cookie_client.set_cookie("session", token)
    resp = cookie_client.get("/api/auth/me", status=401)
    assert resp.json["error"]["code"] == "unauthenticated"
    page = cookie_client.get("/tickets", headers={"Accept": "text/html"}, status=303)
    assert "/login" in page.headers["Location"]


def test_a_role_change_counts_at_the_next_request(client, bearer, admin, make_staff, db):
    sub = make_staff("SUB_ADMIN")
    token = make_token(client, bearer, sub)["token"]
    client.get("/api/users", headers=with_token(token), status=200)
    client.patch_json(f"/api/users/{sub['id']}", {"role": "AGENT"}, headers=bearer(admin))
    client.get("/api/users", headers=with_token(token), status=403)
    client.get("/api/auth/me", headers=with_token(token), status=200)


def test_a_deactivated_users_tokens_stop(client, bearer, admin, make_staff):
    agent = make_staff("AGENT")
    token = make_token(client, bearer, agent)["token"]
    client.get("/api/auth/me", headers=with_token(token), status=200)
    client.patch_json(f"/api/users/{agent['id']}", {"is_active": False}, headers=bearer(admin))
    resp = client.get("/api/auth/me", headers=with_token(token), status=401)
    assert resp.json["error"]["message"] == "Your account is not active."
    # And again once reactivated: deactivation stops them, it does not delete them.
    client.patch_json(f"/api/users/{agent['id']}", {"is_active": True}, headers=bearer(admin))
    client.get("/api/auth/me", headers=with_token(token), status=200)


def test_an_expired_token_is_a_401(client, bearer, admin, clock):
    expires = (clock.now + timedelta(days=1)).isoformat()
    made = make_token(client, bearer, admin, expires_at=expires)
    assert made["api_token"]["expires_at"] == datetime.fromisoformat(expires).isoformat()
    client.get("/api/auth/me", headers=with_token(made["token"]), status=200)
    clock.advance(days=1, seconds=1)
    resp = client.get("/api/auth/me", headers=with_token(made["token"]), status=401)
    assert resp.json["error"]["message"] == "This API token has expired."


@pytest.mark.parametrize(
    ("expires_at", "field"),
    [
        ("2020-01-01T00:00:00+00:00", "expires_at"),  # in the past
        ("2030-01-01T00:00:00", "expires_at"),  # no offset
        ("tomorrow", "expires_at"),
        (None, None),  # null: until revoked
    ],
)
def test_the_expiry_must_be_a_moment_to_come(client, bearer, admin, expires_at, field):
    resp = client.post_json(
        "/api/me/tokens",
        {"name": "CI", "expires_at": expires_at},
        headers=bearer(admin),
        expect_errors=True,
    )
    if field is None:
        assert resp.status_int == 201
        assert resp.json["api_token"]["expires_at"] is None
    else:
        assert resp.status_int == 422
        assert list(resp.json["error"]["details"]) == [field]


def test_a_revoked_token_is_a_401_and_only_its_owner_revokes_it(client, bearer, admin, make_staff):
    other = make_staff("ADMIN")
    made = make_token(client, bearer, admin)
    token_id = made["api_token"]["id"]
    client.delete(f"/api/me/tokens/{token_id}", headers=bearer(other), status=404)
    client.get("/api/auth/me", headers=with_token(made["token"]), status=200)
    client.delete(f"/api/me/tokens/{token_id}", headers=bearer(admin), status=204)
    resp = client.get("/api/auth/me", headers=with_token(made["token"]), status=401)
    assert resp.json["error"]["code"] == "unauthenticated"
    assert client.get("/api/me/tokens", headers=bearer(admin)).json["items"] == []
    client.delete(f"/api/me/tokens/{token_id}", headers=bearer(admin), status=404)


def test_a_token_cannot_be_guessed_from_its_prefix_or_a_near_miss(client, bearer, admin):
    token = make_token(client, bearer, admin)["token"]
    for wrong in (token[:11], token[:-1], token + "x", "sd_pat_", token.upper()):
        client.get("/api/auth/me", headers=with_token(wrong), status=401)


def test_last_used_at_is_written_at_most_once_a_minute(client, bearer, admin, db, clock):
    made = make_token(client, bearer, admin)
    token_id = made["api_token"]["id"]
    assert made["api_token"]["last_used_at"] is None
    client.get("/api/auth/me", headers=with_token(made["token"]))
    first = token_row(db, token_id)["last_used_at"]
    assert first == clock.now
    clock.advance(seconds=30)
    client.get("/api/auth/me", headers=with_token(made["token"]))
    assert token_row(db, token_id)["last_used_at"] == first
    clock.advance(seconds=31)
    client.get("/api/auth/me", headers=with_token(made["token"]))
    assert token_row(db, token_id)["last_used_at"] == clock.now
    listed = client.get("/api/me/tokens", headers=bearer(admin)).json["items"]
    assert listed[0]["last_used_at"] == clock.now.isoformat()


def test_a_token_does_not_log_out(client, bearer, admin):
    token = make_token(client, bearer, admin)["token"]
    resp = client.post("/api/auth/logout", headers=with_token(token), status=400)
    assert "DELETE /api/me/tokens" in resp.json["error"]["message"]
    client.get("/api/auth/me", headers=with_token(token), status=200)


def test_a_password_change_through_a_token_keeps_the_token(client, bearer, admin):
    """A password change through a token ends the user's sessions but not the token (it is
    no session): the token goes on until it is revoked."""
    token = make_token(client, bearer, admin)["token"]
    client.post_json(
        "/api/auth/password",
        {"current_password": "correct horse battery", "new_password": "another passphrase"},
        headers=with_token(token),
        status=200,
    )
    client.get("/api/auth/me", headers=with_token(token), status=200)


def test_the_audit_log_records_making_and_revoking(client, bearer, admin, db):
    made = make_token(client, bearer, admin, name="Zapier")
    token_id = made["api_token"]["id"]
    client.delete(f"/api/me/tokens/{token_id}", headers=bearer(admin), status=204)
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT action::text, actor_id, target_type, target_id, data FROM audit_log ORDER BY id"
        ).fetchall()
    expected_data = {"name": "Zapier", "user_id": admin["id"]}
    assert rows == [
        ("TOKEN_CREATED", admin["id"], "api_token", str(token_id), expected_data),
        ("TOKEN_REVOKED", admin["id"], "api_token", str(token_id), expected_data),
    ]
    assert made["token"] not in repr(rows)


# --- the page --------------------------------------------------------------------------------


def test_the_page_makes_lists_and_revokes_tokens(client, admin, tokens):
    session, _ = tokens.issue(admin)
    client.set_cookie("session", session)
    page = client.get("/account/tokens")
    assert "You have no API tokens." in page.text
    form = page.forms[1]  # the header's logout form comes first
    form["name"] = "Nightly export"
    form["lifetime"] = "30"
    made = form.submit(status=201)
    token = made.html.find(id="new-token")["value"]
    assert token.startswith("sd_pat_")
    # The token works, and is in no URL: the page answered the form itself.
    client.get("/api/auth/me", headers=with_token(token), status=200)
    listed = client.get("/account/tokens")
    assert "Nightly export" in listed.text
    assert token not in listed.text
    revoke = next(f for f in listed.forms.values() if "/revoke" in (f.action or ""))
    done = revoke.submit().follow()
    assert "The token was revoked" in done.text
    client.get("/api/auth/me", headers=with_token(token), status=401)


def test_the_page_shows_a_refused_name(client, admin, tokens):
    session, _ = tokens.issue(admin)
    client.set_cookie("session", session)
    form = client.get("/account/tokens").forms[1]
    form["name"] = "   "
    refused = form.submit(status=422)
    assert 'aria-invalid="true"' in refused.text


def test_no_token_reaches_the_log(client, bearer, admin, caplog):
    caplog.set_level(logging.DEBUG)
    token = make_token(client, bearer, admin)["token"]
    client.get("/api/auth/me", headers=with_token(token))
    client.get("/api/auth/me", headers=with_token(token + "x"), status=401)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"user_id={admin['id']}" in logged
    assert token[len("sd_pat_") :][:20] not in logged
