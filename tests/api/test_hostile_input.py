"""Odd and hostile input gets a clear 4xx, never a 500 (findings of a review, kept as tests)."""

from __future__ import annotations

import json
import threading

import pytest
import webtest

from tests.conftest import STAFF_PASSWORD, shared_app

NEW = {"name": "Cleo", "email": "cleo@example.org", "subject": "Hi", "body": "Hello"}


def error_code(resp):
    return resp.json["error"]["code"]


# --- the JSON API takes JSON only ----------------------------------------------------------


def test_api_refuses_a_form_body_so_cross_site_forms_cannot_log_in(client, make_staff):
    make_staff("AGENT", email="bo@example.com")
    resp = client.post(
        "/api/auth/login", {"email": "bo@example.com", "password": STAFF_PASSWORD}, status=415
    )
    assert error_code(resp) == "unsupported_media_type"
    assert "Set-Cookie" not in resp.headers


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 400, "bad_request"),  # nested too deeply
        (b"\xff\xfe{}", 400, "bad_request"),  # not UTF-8
        (b"", 400, "bad_request"),
        (b'{"name": "' + b"x" * (1024 * 1024) + b'"}', 413, "payload_too_large"),
    ],
    ids=["deep-nesting", "not-utf8", "empty", "over-1MiB"],
)
def test_odd_json_bodies(client, body, status, code):
    resp = client.post("/api/tickets", body, content_type="application/json", status=status)
    assert error_code(resp) == code


def test_a_body_larger_than_any_request_is_refused_before_reading(client, settings):
    limit = int(settings.max_upload_bytes * settings.max_upload_files * 1.4) + 2**20
    resp = client.post(
        "/api/tickets",
        b"{}",
        content_type="application/json",
        headers={"Content-Length": str(limit + 1)},
        status=413,
    )
    assert error_code(resp) == "payload_too_large"


# --- body limits go by route and content type (issue 10, finding 3) -------------------------

DEEP_JSON = b"[" * 30_000 + b"]" * 30_000  # under 64 KiB, far past the recursion limit


@pytest.mark.parametrize("path", ["/login", "/"])
def test_pages_take_forms_only_so_deep_json_is_a_4xx(client, path):
    """POST /login with deeply nested JSON was a 500 (RecursionError in Falcon's parser)."""
    resp = client.post(path, DEEP_JSON, content_type="application/json", expect_errors=True)
    assert resp.status_int == 415
    assert "x-www-form-urlencoded" in resp.text


@pytest.mark.parametrize(
    ("path", "content_type", "size", "status"),
    [
        # A route without files: about 64 KiB, whatever the type.
        ("/api/auth/login", "application/json", 65 * 1024, 413),
        ("/login", "application/x-www-form-urlencoded", 65 * 1024, 413),
        # A route that takes files, with a body that is not multipart: text only.
        ("/api/tickets", "application/json", 513 * 1024, 413),
        ("/", "application/x-www-form-urlencoded", 513 * 1024, 413),
    ],
)
def test_a_body_over_its_route_and_type_limit_is_refused_unread(
    client, path, content_type, size, status
):
    resp = client.post(
        path,
        b"&" * 16,  # what arrives does not matter: the announced length is refused
        content_type=content_type,
        headers={"Content-Length": str(size)},
        expect_errors=True,
    )
    assert resp.status_int == status


def test_a_form_of_empty_fields_is_small(client):
    """5.9 MiB of empty fields cost about 51 MiB of memory when every route took 51 MiB."""
    resp = client.post(
        "/",
        b"&" * (600 * 1024),
        content_type="application/x-www-form-urlencoded",
        expect_errors=True,
    )
    assert resp.status_int == 413


def test_a_long_message_in_json_still_fits(client):
    """The text limit leaves room for the longest message, escaped: 50,000 characters that
    are not ASCII are about 300 KB of JSON."""
    body = json.dumps(NEW | {"body": "\u0436" * 49_000}, ensure_ascii=True).encode()
    assert len(body) > 64 * 1024
    client.post("/api/tickets", body, content_type="application/json", status=201)


# --- text that cannot be stored ----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", "a\x00b"),
        ("body", "a\ud800b"),
        ("email", "cleo\x00@example.org"),
        ("name", "Cl\x00eo"),
        ("subject", "\ud800"),
    ],
)
def test_nul_and_surrogates_are_a_422(client, field, value):
    resp = client.post(
        "/api/tickets",
        json.dumps(NEW | {field: value}).encode(),
        content_type="application/json",
        status=422,
    )
    assert set(resp.json["error"]["details"]) == {field}


@pytest.mark.parametrize(
    "email",
    [
        "victim@evil.example,x",
        '"x"<victim@evil.example>',
        "a b@example.org",
        "cleo@example.org\r\nBcc: x@example.org",
        "cleo@localhost",
        "cléo@example.org",
    ],
)
def test_requester_email_is_one_plain_address(client, db, email):
    resp = client.post_json("/api/tickets", NEW | {"email": email}, status=422)
    assert set(resp.json["error"]["details"]) == {"email"}
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM email_outbox").fetchone() == (0,)


def test_staff_name_and_password_with_nul_are_a_422(client, make_staff, bearer):
    headers = bearer(make_staff("ADMIN"))
    body = {
        "email": "n@example.com",
        "name": "N\x00",
        "role": "AGENT",
        "password": "long enough\x00pw",
    }
    resp = client.post_json("/api/users", body, headers=headers, status=422)
    assert set(resp.json["error"]["details"]) == {"name", "password"}


@pytest.mark.parametrize("password", ["a\ud800" * 6, "long enough\x00"])
def test_login_with_unencodable_password_is_a_422(client, password):
    resp = client.post(
        "/api/auth/login",
        json.dumps({"email": "a@example.com", "password": password}).encode(),
        content_type="application/json",
        status=422,
    )
    assert set(resp.json["error"]["details"]) == {"password"}


# --- numbers and tokens ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("page=%C2%B2", "page"),
        ("per_page=%C2%B2", "per_page"),
        ("assigned_to=%C2%B2", "assigned_to"),
        ("page=" + "9" * 5000, "page"),
        ("q=ab%00cd", "q"),
    ],
)
def test_odd_numbers_and_nul_in_filters_are_a_422(client, make_staff, bearer, query, param):
    resp = client.get(f"/api/tickets?{query}", headers=bearer(make_staff("ADMIN")), status=422)
    assert set(resp.json["error"]["details"]) == {param}


def test_non_ascii_csrf_token_is_refused_not_a_crash(client, make_staff, db):
    agent = make_staff("AGENT", email="bo@example.com", name="Bo")
    client.post_json("/api/auth/login", {"email": "bo@example.com", "password": STAFF_PASSWORD})
    resp = client.patch_json(
        f"/api/users/{agent['id']}", {"name": "X"}, headers={"X-CSRF-Token": "é"}, status=403
    )
    assert resp.json["error"]["details"] == {"csrf": "missing or invalid CSRF token"}
    with db.transaction() as conn:
        assert conn.execute("SELECT name FROM users WHERE id = %s", (agent["id"],)).fetchone() == (
            "Bo",
        )


def test_non_ascii_signatures_and_login_tokens_are_refused(app):
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    browser.get("/submitted?pid=202611-00001&sig=%C3%A9", status=404)
    browser.get("/login")
    browser.post(
        "/login", {"email": "a@example.com", "password": "x", "login_csrf": "é"}, status=403
    )


@pytest.mark.parametrize(
    "target",
    [
        "/%09/evil.example",
        "/%0A/evil.example",
        "/%0D%0ASet-Cookie:x=1",
        "/%5Cevil.example",
        "/%20/evil.example",
        "https://evil.example",
        "//evil.example",
    ],
)
def test_login_next_never_leaves_the_site_nor_breaks_headers(app, make_staff, target):
    make_staff("AGENT", email="bo@example.com")
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    form = browser.get(f"/login?next={target}").forms[0]
    form["email"] = "bo@example.com"
    form["password"] = STAFF_PASSWORD
    assert form.submit().headers["Location"] == "/tickets"
    # Already logged in: the login page redirects at once, to the same safe place.
    assert browser.get(f"/login?next={target}").headers["Location"] == "/tickets"


def test_a_safe_next_is_kept(app, make_staff):
    make_staff("AGENT", email="bo@example.com")
    browser = webtest.TestApp(app, extra_environ={"HTTP_ACCEPT": "text/html"})
    form = browser.get("/login?next=/tickets%3Fstatus%3DOPEN").forms[0]
    form["email"] = "bo@example.com"
    form["password"] = STAFF_PASSWORD
    assert form.submit().headers["Location"] == "/tickets?status=OPEN"


# --- brute force in parallel -------------------------------------------------------------


def test_parallel_guesses_cannot_slip_past_the_limit(settings, db):
    """With a realistic bcrypt cost, 20 simultaneous wrong passwords: only the allowed 5
    are checked; the rest are refused before bcrypt."""
    from supportdesk.accounts.auth import hash_password
    from tests.factories import make_user

    slow = settings.replace(bcrypt_rounds=10)
    with db.transaction() as conn:  # the stored hash's cost is what makes checking slow
        make_user(conn, email="bo@example.com", password_hash=hash_password("x" * 12, 10))
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def guess() -> None:
        client = webtest.TestApp(shared_app(slow, db))
        barrier.wait()
        resp = client.post_json(
            "/api/auth/login",
            {"email": "bo@example.com", "password": "not the password"},
            expect_errors=True,
        )
        statuses.append(resp.status_int)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * 5 + [429] * 15
