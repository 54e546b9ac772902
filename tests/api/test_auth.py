"""Logging in and out, tokens, revocation, CSRF, brute-force protection, the 72-byte rule."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import webtest

from supportdesk.accounts.auth import TokenService
from tests.conftest import STAFF_PASSWORD, shared_app


def login(client, email, password=STAFF_PASSWORD, status=200, **kw):
    return client.post_json(
        "/api/auth/login", {"email": email, "password": password}, status=status, **kw
    )


def test_login_returns_token_user_and_session_cookie(client, make_staff):
    admin = make_staff("ADMIN", email="ana@example.com", name="Ana")
    resp = login(client, "ANA@example.com ")  # case and whitespace do not matter
    body = resp.json
    assert body["user"] == {
        "id": admin["id"],
        "email": "ana@example.com",
        "name": "Ana",
        "role": "ADMIN",
        "is_active": True,
        "created_at": body["user"]["created_at"],
        "updated_at": body["user"]["updated_at"],
    }
    assert body["token_type"] == "Bearer"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"session={body['token']};")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "secure" not in attributes  # plain http in tests; see the production test below


def test_session_cookie_is_secure_in_production(settings, db, make_staff):
    make_staff("ADMIN", email="ana@example.com")
    prod = settings.replace(environment="production")
    client = webtest.TestApp(shared_app(prod, db))
    cookie = login(client, "ana@example.com").headers["Set-Cookie"]
    assert "Secure" in cookie


def test_bearer_token_and_cookie_both_authenticate(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    token = login(client, "bo@example.com").json["token"]
    fresh = webtest.TestApp(client.app)
    me = fresh.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json
    assert me["user"]["email"] == "bo@example.com"
    # The cookie set by the login authenticates the same client.
    assert client.get("/api/auth/me").json["user"]["email"] == "bo@example.com"


@pytest.mark.parametrize("case", ["unknown email", "wrong password", "deactivated user"])
def test_invalid_credentials_are_indistinguishable(client, make_staff, case):
    make_staff("AGENT", email="bo@example.com")
    make_staff("AGENT", email="gone@example.com", is_active=False)
    email, password = {
        "unknown email": ("nobody@example.com", STAFF_PASSWORD),
        "wrong password": ("bo@example.com", "not the password"),
        "deactivated user": ("gone@example.com", STAFF_PASSWORD),
    }[case]
    resp = login(client, email, password, status=401)
    error = resp.json["error"]
    assert error["code"] == "invalid_credentials"
    assert error["message"] == "Email or password is incorrect."
    assert error["details"] == {}
    assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"email", "password"}),
        ({"email": "a@example.com"}, {"password"}),
        ({"email": 5, "password": ["x"]}, {"email", "password"}),
    ],
)
def test_login_validation(client, body, fields):
    resp = client.post_json("/api/auth/login", body, status=422)
    assert set(resp.json["error"]["details"]) == fields


def test_logout_revokes_the_token(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    token = login(client, "bo@example.com").json["token"]
    auth = {"Authorization": f"Bearer {token}"}
    api = webtest.TestApp(client.app)
    api.get("/api/auth/me", headers=auth)
    api.post("/api/auth/logout", headers=auth, status=204)
    resp = api.get("/api/auth/me", headers=auth, status=401)
    assert resp.json["error"]["code"] == "unauthenticated"
    # Another session of the same user is untouched.
    other = login(client, "bo@example.com").json["token"]
    api.get("/api/auth/me", headers={"Authorization": f"Bearer {other}"})


def test_logout_with_cookie_needs_csrf_and_clears_the_cookie(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    csrf = login(client, "bo@example.com").json["csrf_token"]
    refused = client.post("/api/auth/logout", status=403)
    assert refused.json["error"]["details"] == {"csrf": "missing or invalid CSRF token"}
    client.get("/api/auth/me")  # still logged in
    resp = client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}, status=204)
    cleared = resp.headers["Set-Cookie"]
    assert cleared.startswith('session="";')
    assert "expires=Thu, 01 Jan 1970" in cleared
    client.get("/api/auth/me", status=401)


def test_csrf_token_of_another_session_is_refused(client, make_staff, db):
    make_staff("AGENT", email="bo@example.com")
    other_csrf = login(webtest.TestApp(client.app), "bo@example.com").json["csrf_token"]
    login(client, "bo@example.com")
    client.post("/api/auth/logout", headers={"X-CSRF-Token": other_csrf}, status=403)
    # Refused means not done: the session was not logged out.
    client.get("/api/auth/me")
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM revoked_sessions").fetchone() == (0,)


def test_password_change_ends_every_session(client, make_staff, bearer):
    admin = make_staff("ADMIN")
    agent = make_staff("AGENT", email="bo@example.com")
    sessions = [
        login(webtest.TestApp(client.app), "bo@example.com").json["token"] for _ in range(2)
    ]
    client.patch_json(
        f"/api/users/{agent['id']}", {"password": "a new long passphrase"}, headers=bearer(admin)
    )
    for token in sessions:
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}, status=401)
    login(client, "bo@example.com", "a new long passphrase")
    login(client, "bo@example.com", STAFF_PASSWORD, status=401)


# --- one's own password (issue 10, finding 5) ------------------------------------------------

NEW_PASSWORD = "a brand new passphrase"


def _stored(db, user_id):
    with db.transaction() as conn:
        return conn.execute(
            "SELECT password_hash, token_version FROM users WHERE id = %s", (user_id,)
        ).fetchone()


def change(client, token, current=STAFF_PASSWORD, new=NEW_PASSWORD, status=200):
    return client.post_json(
        "/api/auth/password",
        {"current_password": current, "new_password": new},
        headers={"Authorization": f"Bearer {token}"},
        status=status,
    )


@pytest.mark.parametrize("role", ["AGENT", "SUB_ADMIN", "ADMIN"])
def test_changing_ones_password_ends_the_other_sessions(client, make_staff, db, role):
    user = make_staff(role, email="bo@example.com")
    before = _stored(db, user["id"])
    here = login(webtest.TestApp(client.app), "bo@example.com").json["token"]
    elsewhere = login(webtest.TestApp(client.app), "bo@example.com").json["token"]
    resp = change(client, here)
    after = _stored(db, user["id"])
    assert after[0] != before[0]
    assert after[1] == before[1] + 1
    # The session that changed it goes on with its new token; every other one has ended,
    # the old token of this one too.
    client.get("/api/auth/me", headers={"Authorization": f"Bearer {resp.json['token']}"})
    for token in (here, elsewhere):
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}, status=401)
    login(client, "bo@example.com", NEW_PASSWORD)
    login(client, "bo@example.com", STAFF_PASSWORD, status=401)


@pytest.mark.parametrize(
    ("current", "new", "field"),
    [
        ("not my password", NEW_PASSWORD, "current_password"),
        ("", NEW_PASSWORD, "current_password"),
        (STAFF_PASSWORD, "short", "new_password"),
        (STAFF_PASSWORD, "password123", "new_password"),
        (STAFF_PASSWORD, STAFF_PASSWORD, "new_password"),
        (STAFF_PASSWORD, None, "new_password"),
        ("x" * 73, NEW_PASSWORD, "current_password"),  # over bcrypt's 72 bytes
    ],
)
def test_a_refused_password_change_changes_nothing(client, make_staff, db, current, new, field):
    user = make_staff("AGENT", email="bo@example.com")
    token = login(client, "bo@example.com").json["token"]
    before = _stored(db, user["id"])
    resp = change(client, token, current, new, status=422)
    assert field in resp.json["error"]["details"]
    assert _stored(db, user["id"]) == before
    client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_a_stolen_session_cannot_guess_the_current_password(client, make_staff, db):
    user = make_staff("AGENT", email="bo@example.com")
    token = login(client, "bo@example.com").json["token"]
    for n in range(5):
        change(client, token, f"guess number {n}", status=422)
    change(client, token, STAFF_PASSWORD, status=429)  # even the right one, from here
    assert _stored(db, user["id"])[1] == user["token_version"]


def test_the_password_page(app, make_staff, db):
    from tests.pages.test_auth_pages import log_in

    user = make_staff("AGENT", email="bo@example.com")
    other = login(webtest.TestApp(app), "bo@example.com").json["token"]
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    log_in(browser, "bo@example.com")
    page = browser.get("/tickets").click("Password")
    form = page.forms[1]  # after the header's logout form
    form["current_password"] = "not it at all"
    form["new_password"] = NEW_PASSWORD
    refused = form.submit(status=422)
    assert "This is not your current password." in refused.text
    form = refused.forms[1]
    form["current_password"] = STAFF_PASSWORD
    form["new_password"] = NEW_PASSWORD
    done = form.submit(status=303).follow()
    assert "Your password was changed" in done.text
    browser.get("/tickets")  # this browser is still logged in, with its new cookie
    webtest.TestApp(app).get(
        "/api/auth/me", headers={"Authorization": f"Bearer {other}"}, status=401
    )
    assert _stored(db, user["id"])[1] == user["token_version"] + 1


def test_a_hash_of_another_cost_is_rehashed_at_login(client, settings, db, make_staff):
    from supportdesk.accounts.auth import hash_cost, hash_password

    user = make_staff("AGENT", email="bo@example.com")
    old_hash = hash_password(STAFF_PASSWORD, settings.bcrypt_rounds + 1)
    with db.transaction() as conn:
        conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", (old_hash, user["id"]))
    login(client, "bo@example.com", "wrong password!", status=401)
    assert _stored(db, user["id"])[0] == old_hash  # only a right password is rehashed
    login(client, "bo@example.com")
    new_hash, version = _stored(db, user["id"])
    assert hash_cost(new_hash) == settings.bcrypt_rounds
    assert version == user["token_version"]  # the same password: no session ends
    login(client, "bo@example.com")
    # A rehash writes only over the hash it checked: a password changed meanwhile stays.
    from supportdesk.core.db import queries

    with db.transaction() as conn:
        queries.set_password_hash(conn, id=user["id"], password_hash=old_hash, old_hash="stale")
    assert _stored(db, user["id"])[0] == new_hash


def test_the_dummy_hash_costs_what_real_ones_do(app, settings):
    from supportdesk.accounts.auth import hash_cost

    sessions = app._router.find("/api/auth/login")[0].sessions
    assert hash_cost(sessions._dummy_hash.decode()) == settings.bcrypt_rounds


def test_a_logout_holds_when_redis_forgets_everything(client, make_staff, redis_client, db):
    make_staff("AGENT", email="bo@example.com")
    token = login(client, "bo@example.com").json["token"]
    auth = {"Authorization": f"Bearer {token}"}
    client.post("/api/auth/logout", headers=auth, status=204)
    redis_client.flushdb()  # a restart without persistence (the desk uses one database)
    client.get("/api/auth/me", headers=auth, status=401)
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM revoked_sessions").fetchone() == (1,)


def test_expired_revocations_are_forgotten(client, make_staff, db):
    user = make_staff("AGENT", email="bo@example.com")
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO revoked_sessions (jti, user_id, expires_at) "
            "VALUES ('old', %s, now() - interval '1 minute')",
            (user["id"],),
        )
    token = login(client, "bo@example.com").json["token"]
    client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"}, status=204)
    with db.transaction() as conn:
        rows = conn.execute("SELECT jti FROM revoked_sessions").fetchall()
    assert len(rows) == 1
    assert rows[0][0] != "old"


def test_deactivation_ends_every_session(client, make_staff, bearer):
    admin = make_staff("ADMIN")
    agent = make_staff("AGENT", email="bo@example.com")
    token = login(client, "bo@example.com").json["token"]
    client.patch_json(f"/api/users/{agent['id']}", {"is_active": False}, headers=bearer(admin))
    client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}, status=401)
    # Reactivation does not bring the old session back.
    client.patch_json(f"/api/users/{agent['id']}", {"is_active": True}, headers=bearer(admin))
    client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}, status=401)


def _tampered(token: str, **claims) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_bad_tokens_are_401(client, make_staff, settings, redis_client):
    agent = make_staff("AGENT")
    admin = make_staff("ADMIN")
    good = TokenService(settings.secret_key, timedelta(hours=1))
    token, _ = good.issue(agent)
    expired, _ = TokenService(
        settings.secret_key,
        timedelta(hours=1),
        clock=lambda: datetime.now(UTC) - timedelta(hours=2),
    ).issue(agent)
    other_key, _ = TokenService("another-secret-key-" + "y" * 32, timedelta(hours=1)).issue(agent)
    unsigned = jwt.encode(
        {"sub": str(admin["id"]), "ver": 0, "jti": "x", "iat": 0, "exp": 4102444800},
        key=None,
        algorithm="none",
    )
    for bad in (
        expired,
        other_key,
        unsigned,
        _tampered(token, sub=str(admin["id"])),
        token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "garbage",
        "a.b.c",
    ):
        resp = client.get("/api/auth/me", headers={"Authorization": f"Bearer {bad}"}, status=401)
        assert resp.json["error"]["code"] == "unauthenticated"
    client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}, status=200)


def test_token_of_a_deleted_user_is_401(client, make_staff, bearer, db):
    agent = make_staff("AGENT")
    headers = bearer(agent)
    with db.transaction() as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (agent["id"],))
    client.get("/api/auth/me", headers=headers, status=401)


# --- brute force -------------------------------------------------------------------------


def _client_with(settings, db, **changes):
    changed = settings.replace(**changes)
    return webtest.TestApp(shared_app(changed, db))


def test_repeated_failures_refuse_that_client_for_that_account(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    for _ in range(5):
        login(client, "bo@example.com", "wrong password!", status=401)
    resp = login(client, "bo@example.com", status=429)  # even the right password, from here
    assert resp.json["error"]["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 15 * 60
    # Another account from the same address is not refused by this one.
    make_staff("AGENT", email="cy@example.com")
    login(client, "cy@example.com")


def test_an_attacker_cannot_lock_the_real_user_out(client, make_staff, redis_client):
    """Finding 1 of issue 10: failures from one address once refused the right password
    from every address, and kept the window open while the attacker went on trying."""
    make_staff("ADMIN", email="admin@example.com")
    attacker = {"REMOTE_ADDR": "203.0.113.66"}
    for _ in range(5):
        login(client, "admin@example.com", "wrong password!", status=401, extra_environ=attacker)
    for _ in range(20):  # refused, and no longer counted
        login(client, "admin@example.com", "wrong password!", status=429, extra_environ=attacker)
    # The real user, from their own address, logs in at once.
    login(client, "admin@example.com", extra_environ={"REMOTE_ADDR": "198.51.100.7"})
    # The attacker's refusals did not push its window out: the counters stopped at the limit.
    counts = [int(redis_client.get(k)) for k in redis_client.scan_iter("sd:login:pair:*")]
    assert counts == [5]


def test_guessing_one_account_from_many_addresses_is_slowed(settings, db, make_staff):
    client = _client_with(settings, db, login_account_slowdown_after=6)
    make_staff("ADMIN", email="admin@example.com")
    for n in range(6):  # six addresses, one failure each: the account's ceiling
        address = {"REMOTE_ADDR": f"203.0.113.{n}"}
        login(client, "admin@example.com", "wrong password!", status=401, extra_environ=address)
    # Past it, every address gets one try a window: a second guess from one is refused...
    slow = {"REMOTE_ADDR": "203.0.113.0"}
    login(client, "admin@example.com", "wrong password!", status=429, extra_environ=slow)
    fresh = {"REMOTE_ADDR": "203.0.113.99"}
    login(client, "admin@example.com", "wrong password!", status=401, extra_environ=fresh)
    login(client, "admin@example.com", "wrong password!", status=429, extra_environ=fresh)
    # ...while the real user's first try, from an address that has not failed, gets in.
    login(client, "admin@example.com", extra_environ={"REMOTE_ADDR": "198.51.100.7"})


def test_a_success_does_not_reset_the_address_count(settings, db, make_staff):
    """Logging in to an account of one's own must not clear the guesses an address made
    against other accounts."""
    client = _client_with(settings, db, login_max_failures_per_address=4)
    make_staff("AGENT", email="mine@example.com")
    make_staff("AGENT", email="bo@example.com")
    for n in range(3):
        login(client, f"guess{n}@example.com", status=401)
    login(client, "mine@example.com")  # its own attempt is given back, nothing more
    login(client, "guess9@example.com", status=401)
    login(client, "bo@example.com", "wrong password!", status=429)


def test_unknown_emails_are_limited_alike(client):
    for _ in range(5):
        login(client, "nobody@example.com", status=401)
    resp = login(client, "nobody@example.com", status=429)
    assert resp.headers["Retry-After"]


def test_failures_from_one_address_are_limited_across_accounts(settings, db, make_staff):
    client = _client_with(settings, db, login_max_failures_per_address=3)
    make_staff("AGENT", email="bo@example.com")
    for n in range(3):
        login(client, f"guess{n}@example.com", status=401)
    login(client, "bo@example.com", status=429)
    # Another address is not affected.
    login(client, "bo@example.com", extra_environ={"REMOTE_ADDR": "10.9.8.7"})


def test_limit_resets_after_the_window(settings, db, make_staff):
    client = _client_with(settings, db, login_window_seconds=1)
    make_staff("AGENT", email="bo@example.com")
    for _ in range(5):
        login(client, "bo@example.com", "wrong password!", status=401)
    login(client, "bo@example.com", status=429)
    time.sleep(1.2)  # the window is a real Redis expiry
    login(client, "bo@example.com")


def test_success_clears_the_account_count(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    for _ in range(4):
        login(client, "bo@example.com", "wrong password!", status=401)
    login(client, "bo@example.com")
    for _ in range(4):
        login(client, "bo@example.com", "wrong password!", status=401)
    login(client, "bo@example.com")


# --- bcrypt's 72 bytes -------------------------------------------------------------------


def test_login_with_password_over_72_bytes_is_422(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    for email in ("bo@example.com", "nobody@example.com"):  # the same answer for both
        resp = login(client, email, "x" * 73, status=422)
        assert "72 bytes" in resp.json["error"]["details"]["password"]


@pytest.mark.parametrize(
    ("password", "status"),
    [("éàüö" * 9, 201), ("éàüö" * 9 + "ß", 422), ("abc1" * 18, 201), ("abc1" * 18 + "d", 422)],
    ids=["72-bytes-multibyte", "74-bytes-multibyte", "72-bytes-ascii", "73-bytes-ascii"],
)
def test_new_password_byte_limit(client, make_staff, bearer, password, status):
    admin = make_staff("ADMIN")
    resp = client.post_json(
        "/api/users",
        {"email": "new@example.com", "name": "New", "role": "AGENT", "password": password},
        headers=bearer(admin),
        status=status,
    )
    if status == 201:
        login(client, "new@example.com", password)
        # Every byte counts: one character less is not the password.
        login(client, "new@example.com", password[:-1], status=401)
    else:
        assert "72 bytes" in resp.json["error"]["details"]["password"]


def test_no_response_contains_a_password_hash(client, make_staff, bearer, db):
    admin = make_staff("ADMIN", email="ana@example.com")
    agent = make_staff("AGENT")
    headers = bearer(admin)
    bodies = [
        login(client, "ana@example.com").text,
        client.get("/api/auth/me", headers=headers).text,
        client.get("/api/users", headers=headers).text,
        client.post_json(
            "/api/users",
            {"email": "n@example.com", "name": "N", "role": "AGENT", "password": "long enough pw"},
            headers=headers,
        ).text,
        client.patch_json(f"/api/users/{agent['id']}", {"name": "Renamed"}, headers=headers).text,
        client.get("/users", headers=headers).text,
        client.get(f"/users/{agent['id']}", headers=headers).text,
    ]
    with db.transaction() as conn:
        hashes = [r[0] for r in conn.execute("SELECT password_hash FROM users")]
    for body in bodies:
        assert "password_hash" not in body
        assert "token_version" not in body
        assert "$2b$" not in body
        assert not any(h in body for h in hashes)
