"""Password reset by email (DESIGN.md section 13): the request that tells nothing, the link
that works once for 30 minutes, and what a reset ends. Against the real PostgreSQL and
Redis; the worker's side (`ResetRequestsLoop`) runs here step by step, on the same clock."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime

import pytest
import webtest

from supportdesk.accounts.password_resets import (
    ACCEPTED,
    RESET_QUEUE,
    PasswordResets,
)
from supportdesk.core.redis_client import make_redis
from supportdesk.mail.outbound.password_reset import ResetMailer
from supportdesk.worker.password_resets import ResetRequestsLoop
from tests.clock import Clock
from tests.conftest import STAFF_PASSWORD, shared_app

NEW_PASSWORD = "a fresh long passphrase"
_TOKEN = re.compile(r"/password-reset/confirm\?token=(\S+)")


CLOCK = Clock()  # the module's, set back to now for each test


@pytest.fixture
def clock() -> Clock:
    """The app's and the worker's clock, moved by the test."""
    return CLOCK.reset()


@pytest.fixture
def reset_settings(settings):
    return settings


@pytest.fixture
def client(reset_settings, db, redis_client, clock) -> webtest.TestApp:
    app = shared_app(reset_settings, db, clock=clock)
    return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.10"})


@pytest.fixture
def requests_loop(reset_settings, db, clock) -> ResetRequestsLoop:
    """The worker's thread, stepped by the test."""
    redis_client = make_redis(reset_settings)
    resets = PasswordResets.from_settings(db, redis_client, reset_settings, clock)
    return ResetRequestsLoop(
        resets, ResetMailer(db, redis_client, resets, reset_settings, clock), settle=0
    )


def answer_all(loop: ResetRequestsLoop) -> list[bool]:
    """What the worker did with each queued request (True: an email was queued)."""
    done = []
    while (outcome := loop.step(0.05)) is not None:
        done.append(outcome)
    return done


def ask(client: webtest.TestApp, email: str, **kw) -> webtest.TestResponse:
    return client.post_json("/api/auth/password-reset", {"email": email}, status=202, **kw)


def reset_emails(db, to: str | None = None) -> list[dict]:
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT to_address, subject, body_text, headers, ticket_id FROM email_outbox "
            "WHERE kind = 'PASSWORD_RESET' ORDER BY id"
        ).fetchall()
    keys = ("to_address", "subject", "body_text", "headers", "ticket_id")
    emails = [dict(zip(keys, row, strict=True)) for row in rows]
    return [e for e in emails if to is None or e["to_address"] == to]


def link_token(db, to: str) -> str:
    [*_, email] = reset_emails(db, to)
    return _TOKEN.search(email["body_text"]).group(1)


def confirm(client, token: str, password: str = NEW_PASSWORD, status: int = 200):
    return client.post_json(
        "/api/auth/password-reset/confirm",
        {"token": token, "new_password": password},
        status=status,
    )


def audit_rows(db, action: str) -> list[tuple]:
    with db.transaction() as conn:
        return conn.execute(
            "SELECT actor_id, target_type, target_id, host(client_ip), request_id, data "
            "FROM audit_log WHERE action = %s ORDER BY id",
            (action,),
        ).fetchall()


def login(client, email: str, password: str, status: int = 200):
    return client.post_json(
        "/api/auth/login", {"email": email, "password": password}, status=status
    )


@pytest.fixture
def ana(make_staff):
    return make_staff("AGENT", email="ana@example.com", name="Ana Agent")


def test_an_active_user_is_emailed_a_link_that_sets_the_password(client, requests_loop, db, ana):
    resp = ask(client, "Ana@Example.com")
    assert resp.json == ACCEPTED
    assert answer_all(requests_loop) == [True]
    [email] = reset_emails(db)
    assert email["to_address"] == "ana@example.com"
    assert email["ticket_id"] is None
    assert email["headers"]["Auto-Submitted"] == "auto-generated"
    assert "30 minutes" in email["body_text"]
    token = link_token(db, "ana@example.com")
    assert confirm(client, token).json["status"] == "password_set"
    login(client, "ana@example.com", STAFF_PASSWORD, status=401)
    login(client, "ana@example.com", NEW_PASSWORD)


def test_the_audit_log_records_the_request_and_the_reset(client, requests_loop, db, ana):
    resp = ask(client, "ana@example.com", headers={"X-Request-ID": "reset-request-0001"})
    answer_all(requests_loop)
    [requested] = audit_rows(db, "PASSWORD_RESET_REQUESTED")
    assert requested[:5] == (None, "user", str(ana["id"]), "192.0.2.10", "reset-request-0001")
    assert requested[5] == {"emailed": True}
    assert resp.headers["X-Request-ID"] == "reset-request-0001"
    confirm(client, link_token(db, "ana@example.com"))
    [reset] = audit_rows(db, "PASSWORD_RESET")
    assert reset[:4] == (ana["id"], "user", str(ana["id"]), "192.0.2.10")


def test_a_link_works_once(client, requests_loop, db, ana):
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    token = link_token(db, "ana@example.com")
    confirm(client, token)
    again = confirm(client, token, "yet another passphrase", status=422)
    assert "token" in again.json["error"]["details"]
    login(client, "ana@example.com", NEW_PASSWORD)


@pytest.mark.parametrize(("minutes", "status"), [(29, 200), (31, 422)])
def test_a_link_lasts_30_minutes(client, requests_loop, db, ana, clock, minutes, status):
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    token = link_token(db, "ana@example.com")
    clock.advance(minutes=minutes)
    resp = confirm(client, token, status=status)
    if status == 422:
        assert resp.json["error"]["details"] == {
            "token": "This link has expired; ask for a new one."
        }
        login(client, "ana@example.com", STAFF_PASSWORD)


def test_a_newer_link_ends_the_older_one(client, requests_loop, db, ana, clock):
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    older = link_token(db, "ana@example.com")
    clock.advance(minutes=1)
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    newer = link_token(db, "ana@example.com")
    assert newer != older
    confirm(client, older, status=422)
    confirm(client, newer)


def test_a_password_change_ends_the_link(client, requests_loop, db, ana, bearer):
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    token = link_token(db, "ana@example.com")
    client.post_json(
        "/api/auth/password",
        {"current_password": STAFF_PASSWORD, "new_password": "changed it myself"},
        headers=bearer(ana),
    )
    confirm(client, token, status=422)
    login(client, "ana@example.com", "changed it myself")


def test_a_deactivation_after_the_email_ends_the_link(
    client, requests_loop, db, ana, make_staff, bearer
):
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    token = link_token(db, "ana@example.com")
    admin = make_staff("ADMIN")
    client.patch_json(f"/api/users/{ana['id']}", {"is_active": False}, headers=bearer(admin))
    confirm(client, token, status=422)


def test_every_session_ends_when_the_password_is_reset(client, requests_loop, db, ana):
    session = login(client, "ana@example.com", STAFF_PASSWORD).json["token"]
    other = login(client, "ana@example.com", STAFF_PASSWORD).json["token"]
    for token in (session, other):
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}, status=200)
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    confirm(client, link_token(db, "ana@example.com"))
    for token in (session, other):
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}, status=401)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # the signature
        lambda t: str(int(t.split(".")[0]) + 1) + t[t.index(".") :],  # the row
        lambda t: t.split(".")[0] + "." + str(int(t.split(".")[1]) + 3600) + "." + t.split(".")[2],
        lambda t: "not a token",
        lambda t: "",
    ],
)
def test_a_link_that_is_not_ours_is_refused(client, requests_loop, db, ana, tamper):
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    token = link_token(db, "ana@example.com")
    resp = confirm(client, tamper(token), status=422)
    assert "token" in resp.json["error"]["details"]
    confirm(client, token)  # the real one still works


def test_the_password_rules_apply_and_a_refused_password_keeps_the_link(
    client, requests_loop, db, ana
):
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    token = link_token(db, "ana@example.com")
    for weak in ("short", "password123", "ana@example.com"):
        resp = confirm(client, token, weak, status=422)
        assert list(resp.json["error"]["details"]) == ["new_password"]
    confirm(client, token)


# --- enumeration ----------------------------------------------------------------------------


def _answer(resp: webtest.TestResponse) -> tuple:
    headers = sorted((k, v) for k, v in resp.headerlist if k.lower() != "x-request-id")
    return resp.status_int, tuple(headers), resp.body


@pytest.fixture
def limited_settings(settings):
    return settings.replace(password_resets_per_account=1)


def test_the_answer_is_the_same_for_unknown_deactivated_real_and_rate_limited(
    db, redis_client, make_staff, limited_settings, clock
):
    """Identical status, headers and body; only the real, active account gets an email,
    and the one past its limit gets none."""
    client = webtest.TestApp(
        shared_app(limited_settings, db, clock=clock),
        extra_environ={"REMOTE_ADDR": "192.0.2.10"},
    )
    redis = make_redis(limited_settings)
    resets = PasswordResets.from_settings(db, redis, limited_settings, clock)
    loop = ResetRequestsLoop(
        resets, ResetMailer(db, redis, resets, limited_settings, clock), settle=0
    )
    make_staff("AGENT", email="real@example.com")
    make_staff("AGENT", email="gone@example.com", is_active=False)
    make_staff("AGENT", email="limited@example.com")
    ask(client, "limited@example.com")  # its one request this hour
    answer_all(loop)
    answers = {
        case: _answer(ask(client, f"{case}@example.com"))
        for case in ("unknown", "gone", "real", "limited")
    }
    assert len(set(answers.values())) == 1, answers
    assert redis.llen(RESET_QUEUE) == 3  # the rate-limited request was not queued
    assert answer_all(loop) == [False, False, True]
    assert [e["to_address"] for e in reset_emails(db)] == [
        "limited@example.com",  # before the test's requests
        "real@example.com",
    ]
    # The audit log names real accounts only: none for the unknown address.
    assert [row[5] for row in audit_rows(db, "PASSWORD_RESET_REQUESTED")] == [
        {"emailed": True},
        {"emailed": False, "reason": "deactivated"},
        {"emailed": True},
    ]


def test_a_malformed_address_is_a_422_whoever_it_would_name(client):
    resp = client.post_json("/api/auth/password-reset", {"email": "not an address"}, status=422)
    assert list(resp.json["error"]["details"]) == ["email"]
    client.post_json("/api/auth/password-reset", {}, status=422)
    client.post_json("/api/auth/password-reset", {"email": "a@example.com", "x": 1}, status=422)


# --- rate limits ----------------------------------------------------------------------------


def test_requests_past_the_per_address_limit_send_nothing(db, make_staff, settings, clock):
    limited = settings.replace(password_resets_per_address=2)
    client = webtest.TestApp(
        shared_app(limited, db, clock=clock),
        extra_environ={"REMOTE_ADDR": "192.0.2.10"},
    )
    redis = make_redis(limited)
    resets = PasswordResets.from_settings(db, redis, limited, clock)
    loop = ResetRequestsLoop(resets, ResetMailer(db, redis, resets, limited, clock), settle=0)
    for n in range(3):
        make_staff("AGENT", email=f"s{n}@example.com")
        assert ask(client, f"s{n}@example.com").json == ACCEPTED
    assert answer_all(loop) == [True, True]
    assert [e["to_address"] for e in reset_emails(db)] == ["s0@example.com", "s1@example.com"]
    # Another client address is not held back by this one's limit.
    ask(client, "s2@example.com", extra_environ={"REMOTE_ADDR": "192.0.2.99"})
    assert answer_all(loop) == [True]
    # An hour later the address may ask again.
    clock.advance(hours=1)
    redis.flushdb()  # Redis's own clock ends the window; the test cannot wait an hour
    ask(client, "s0@example.com")
    assert answer_all(loop) == [True]


def test_requests_past_the_per_account_limit_send_nothing(db, make_staff, settings, clock):
    limited = settings.replace(password_resets_per_account=2)
    client = webtest.TestApp(shared_app(limited, db, clock=clock))
    redis = make_redis(limited)
    resets = PasswordResets.from_settings(db, redis, limited, clock)
    loop = ResetRequestsLoop(resets, ResetMailer(db, redis, resets, limited, clock), settle=0)
    make_staff("AGENT", email="ana@example.com")
    for n in range(4):  # from four addresses: the account's own limit holds
        ask(client, "ana@example.com", extra_environ={"REMOTE_ADDR": f"192.0.2.{n + 1}"})
    assert answer_all(loop) == [True, True]
    assert len(reset_emails(db, "ana@example.com")) == 2
    # The key is the address typed: an unknown one is limited exactly alike.
    for n in range(3):
        ask(client, "nobody@example.com", extra_environ={"REMOTE_ADDR": f"192.0.2.{n + 1}"})
    assert redis.llen(RESET_QUEUE) == 2


def test_a_request_the_worker_sees_too_late_is_dropped(client, requests_loop, db, ana, clock):
    ask(client, "ana@example.com")
    clock.advance(minutes=31)
    assert answer_all(requests_loop) == [False]
    assert reset_emails(db) == []


# --- pages ----------------------------------------------------------------------------------


def test_the_pages_reset_a_password_without_javascript(client, requests_loop, db, ana):
    login_page = client.get("/login")
    forgot = login_page.click("Forgot your password?")
    forgot.form["email"] = "ana@example.com"
    sent = forgot.form.submit().follow()
    assert "If an active account has this address" in sent.text
    answer_all(requests_loop)
    link = _TOKEN.search(reset_emails(db)[0]["body_text"]).group(0)
    page = client.get(link)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    page.form["new_password"] = "short"
    refused = page.form.submit(status=422)
    assert "at least" in refused.text
    refused.form["new_password"] = NEW_PASSWORD
    done = refused.form.submit().follow()
    assert "Your password was set" in done.text
    login(client, "ana@example.com", NEW_PASSWORD)
    # The link is used up: its page says so and offers a new one.
    used = client.get(link, status=422)
    assert "Ask for a new link" in used.text
    assert "/password-reset/confirm" not in used.text  # no form to set it with


def test_the_forgot_page_answers_an_unknown_address_alike(client, requests_loop, db):
    forgot = client.get("/password-reset")
    forgot.form["email"] = "nobody@example.com"
    sent = forgot.form.submit()
    assert sent.status_int == 303
    assert sent.headers["Location"].endswith("/password-reset?sent=1")
    assert answer_all(requests_loop) == [False]


def test_the_worker_answers_a_request_a_moment_after_it_was_made(
    client, requests_loop, db, ana, clock
):
    """Not on the tail of the request's own answer: its account's work (the link, the
    email) must not show in that answer's timing (worker/password_resets.py SETTLE)."""
    settled = ResetRequestsLoop(requests_loop.resets, requests_loop.mailer, settle=0.5)
    clock.now = datetime.now(UTC)  # the stamp is this moment, not the fixture's (a busy setup)
    started = time.monotonic()  # before the request: however long it takes on a busy machine
    ask(client, "ana@example.com")
    assert settled.step(1) is True
    assert time.monotonic() - started >= 0.45  # (the request's stamp is wall-clock time)
    assert len(reset_emails(db)) == 1


def test_a_request_stamped_by_a_clock_ahead_waits_no_longer_than_the_settling(
    client, requests_loop, db, ana, clock
):
    settled = ResetRequestsLoop(requests_loop.resets, requests_loop.mailer, settle=0.3)
    clock.advance(hours=1)  # the web host's clock is an hour ahead of the worker's
    ask(client, "ana@example.com")
    started = time.monotonic()
    assert settled.step(1) is True
    assert time.monotonic() - started < 10  # the settling's 0.3 s and a busy machine, not the hour


def test_no_link_token_and_no_password_reaches_the_log(client, requests_loop, db, ana, caplog):
    caplog.set_level(logging.DEBUG)
    ask(client, "ana@example.com")
    answer_all(requests_loop)
    token = link_token(db, "ana@example.com")
    client.get(f"/password-reset/confirm?token={token}")
    confirm(client, token)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "path=/password-reset/confirm " in logged  # the request was logged...
    sig = token.rsplit(".", 1)[1]
    assert sig not in logged  # ...without its token
    assert NEW_PASSWORD not in logged


def test_the_queue_keeps_the_newest_requests_when_no_worker_takes_them(
    db, redis_client, settings, clock
):
    from supportdesk.accounts.audit import Origin
    from supportdesk.accounts.password_resets import ResetThrottle

    redis = make_redis(settings)
    throttle = ResetThrottle(redis, per_address=100, per_account=100)
    resets = PasswordResets(db, redis, throttle, settings.secret_key, 4, clock, max_queued=2)
    for n in range(4):
        resets.request({"email": f"s{n}@example.com"}, Origin(client_ip="192.0.2.1"))
    queued = [resets.next_request(0.05).email for _ in range(2)]
    assert queued == ["s2@example.com", "s3@example.com"]
    assert resets.next_request(0.05) is None
