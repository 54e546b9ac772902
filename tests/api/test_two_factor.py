"""Two-factor authentication (DESIGN.md section 13): enrolment, the login's code step, replay
and reuse refused, the throttle on codes, REQUIRE_2FA_FOR, an ADMIN's reset, the audit rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt
import pyotp
import pytest
import webtest
from cryptography.fernet import Fernet
from psycopg.rows import dict_row

from supportdesk.accounts.auth import ChallengeTokens, TokenService
from supportdesk.core.secrets import SecretBox
from tests.clock import Clock
from tests.conftest import STAFF_PASSWORD, shared_app

CLOCK = Clock(behind=timedelta(minutes=20))  # set back for each test (tests/clock.py)


@pytest.fixture
def clock() -> Clock:
    return CLOCK.reset()


def make_client(settings, db, clock, **over) -> webtest.TestApp:
    return webtest.TestApp(shared_app(settings.replace(**over), db, clock=clock))


@pytest.fixture
def api(settings, db, clock) -> webtest.TestApp:
    return make_client(settings, db, clock)


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def login(api, email, password=STAFF_PASSWORD, status=200):
    return api.post_json("/api/auth/login", {"email": email, "password": password}, status=status)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enrol(api, clock, email) -> tuple[str, list[str]]:
    """Log `email` in, enrol and confirm: (the secret, the recovery codes). Leaves the
    client's cookies cleared, and the clock on the next step (the code used is spent)."""
    token = login(api, email).json["token"]
    started = api.post("/api/me/2fa", headers=auth(token)).json
    secret = started["secret"]
    confirmed = api.post_json(
        "/api/me/2fa/confirm", {"code": code_at(secret, clock())}, headers=auth(token)
    ).json
    api.reset()
    clock.advance(seconds=30)
    return secret, confirmed["recovery_codes"]


def audit_rows(db, action: str) -> list[dict]:
    with db.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT action::text, actor_id, subject, target_type, target_id, data, client_ip "
            "FROM audit_log WHERE action = %s ORDER BY id",
            (action,),
        ).fetchall()


# --- enrolment ---------------------------------------------------------------------------


def test_enrolment_then_login_with_a_code(api, make_staff, clock, db, settings):
    ana = make_staff("ADMIN", email="ana@example.com")
    token = login(api, "ana@example.com").json["token"]
    assert api.get("/api/me/2fa", headers=auth(token)).json == {
        "enabled": False,
        "enrolment_started": False,
        "required": False,
        "recovery_codes_left": 0,
    }
    started = api.post("/api/me/2fa", headers=auth(token)).json
    secret = started["secret"]
    assert started["otpauth_uri"].startswith("otpauth://totp/Support%20Desk:ana%40example.com?")
    assert f"secret={secret}" in started["otpauth_uri"]
    assert started["qr_svg"].startswith("<svg")
    assert "<script" not in started["qr_svg"]
    # Started is not on: the password alone still logs in.
    api.reset()
    assert "token" in login(api, "ana@example.com").json
    with db.transaction() as conn:
        sealed = conn.execute(
            "SELECT secret_sealed FROM two_factor WHERE user_id = %s", (ana["id"],)
        ).fetchone()[0]
    assert secret not in sealed  # kept sealed, never in clear
    assert SecretBox(settings).open(sealed) == secret

    codes = api.post_json(
        "/api/me/2fa/confirm", {"code": code_at(secret, clock())}, headers=auth(token)
    ).json["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    with db.transaction() as conn:
        stored = [r[0] for r in conn.execute("SELECT code_hash FROM recovery_codes").fetchall()]
    assert len(stored) == 10
    assert not set(codes) & set(stored)

    clock.advance(seconds=30)
    api.reset()
    first = login(api, "ana@example.com").json
    assert first["two_factor"] == "required"
    assert set(first) == {"two_factor", "challenge", "expires_at"}  # no session yet
    assert "Set-Cookie" not in login(api, "ana@example.com").headers
    with pytest.raises(jwt.InvalidTokenError):  # the challenge is no session token
        jwt.decode(first["challenge"], settings.secret_key, algorithms=["HS256"])
    api.get("/api/auth/me", headers=auth(first["challenge"]), status=401)

    done = api.post_json(
        "/api/auth/login/2fa", {"challenge": first["challenge"], "code": code_at(secret, clock())}
    ).json
    assert done["user"]["email"] == "ana@example.com"
    assert done["must_enrol"] is False
    assert api.get("/api/auth/me", headers=auth(done["token"])).json["user"]["id"] == ana["id"]
    assert api.get("/api/me/2fa", headers=auth(done["token"])).json["enabled"] is True


def test_starting_again_while_on_is_a_conflict_and_keeps_the_secret(api, make_staff, clock):
    make_staff("AGENT", email="bo@example.com")
    secret, _ = enrol(api, clock, "bo@example.com")
    challenge = login(api, "bo@example.com").json["challenge"]
    token = api.post_json(
        "/api/auth/login/2fa", {"challenge": challenge, "code": code_at(secret, clock())}
    ).json["token"]
    resp = api.post("/api/me/2fa", headers=auth(token), status=409)
    assert resp.json["error"]["code"] == "conflict"
    assert api.get("/api/me/2fa", headers=auth(token)).json["enabled"] is True


def test_confirm_refuses_a_wrong_code_and_nothing_is_on(api, make_staff, clock):
    make_staff("AGENT", email="bo@example.com")
    token = login(api, "bo@example.com").json["token"]
    api.post_json("/api/me/2fa/confirm", {"code": "123456"}, headers=auth(token), status=409)
    secret = api.post("/api/me/2fa", headers=auth(token)).json["secret"]
    wrong = f"{(int(code_at(secret, clock())) + 1) % 10**6:06d}"
    resp = api.post_json("/api/me/2fa/confirm", {"code": wrong}, headers=auth(token), status=422)
    assert "code" in resp.json["error"]["details"]
    resp = api.post_json("/api/me/2fa/confirm", {"code": "12"}, headers=auth(token), status=422)
    assert "code" in resp.json["error"]["details"]
    assert api.get("/api/me/2fa", headers=auth(token)).json["enabled"] is False


# --- the code step -----------------------------------------------------------------------


def test_a_wrong_code_is_refused_and_recorded(api, make_staff, clock, db):
    bo = make_staff("AGENT", email="bo@example.com")
    secret, _ = enrol(api, clock, "bo@example.com")
    challenge = login(api, "bo@example.com").json["challenge"]
    wrong = f"{(int(code_at(secret, clock())) + 1) % 10**6:06d}"
    resp = api.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": wrong}, status=401)
    assert resp.json["error"]["code"] == "invalid_code"
    assert "Set-Cookie" not in resp.headers
    [failed] = [r for r in audit_rows(db, "LOGIN_FAILED") if r["actor_id"] == bo["id"]]
    assert failed["subject"] == "bo@example.com"
    assert failed["data"] == {"reason": "two_factor_code"}
    # The same challenge still takes the right code.
    api.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": code_at(secret, clock())})


def test_a_code_used_once_is_refused_within_its_window(api, make_staff, clock):
    make_staff("AGENT", email="bo@example.com")
    secret, _ = enrol(api, clock, "bo@example.com")
    code = code_at(secret, clock())
    for expected in (200, 401):
        challenge = login(api, "bo@example.com").json["challenge"]
        api.post_json(
            "/api/auth/login/2fa", {"challenge": challenge, "code": code}, status=expected
        )
        api.reset()
    # Nor a code of an earlier step that is still within the drift.
    challenge = login(api, "bo@example.com").json["challenge"]
    earlier = code_at(secret, clock() - timedelta(seconds=30))
    api.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": earlier}, status=401)
    # The next step's code is new: it works.
    clock.advance(seconds=30)
    api.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": code_at(secret, clock())})


def test_a_recovery_code_works_once(api, make_staff, clock, db):
    bo = make_staff("AGENT", email="bo@example.com")
    _, codes = enrol(api, clock, "bo@example.com")
    typed = codes[3].upper().replace("-", " ")  # as typed: case and separators do not matter
    challenge = login(api, "bo@example.com").json["challenge"]
    api.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": typed})
    api.reset()
    challenge = login(api, "bo@example.com").json["challenge"]
    resp = api.post_json(
        "/api/auth/login/2fa", {"challenge": challenge, "code": codes[3]}, status=401
    )
    assert resp.json["error"]["code"] == "invalid_code"
    [used] = audit_rows(db, "RECOVERY_CODE_USED")
    assert (used["actor_id"], used["target_id"], used["data"]) == (
        bo["id"],
        str(bo["id"]),
        {"left": 9},
    )
    [first] = [r for r in audit_rows(db, "LOGIN") if r["data"].get("two_factor")]
    assert first["data"] == {"method": "password", "two_factor": "recovery_code"}


def test_wrong_codes_are_throttled_like_passwords(settings, db, make_staff, clock):
    api = make_client(settings, db, clock, login_max_failures_per_account=3)
    make_staff("AGENT", email="bo@example.com")
    secret, _ = enrol(api, clock, "bo@example.com")
    challenge = login(api, "bo@example.com").json["challenge"]
    right = code_at(secret, clock())
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    # The password step counted one attempt, which stands until a code is right: two wrong
    # codes make three, and then even the right code is refused for now.
    for _ in range(2):
        api.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": wrong}, status=401)
    resp = api.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": right}, status=429)
    assert resp.json["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0
    # A right password does not clear the count of wrong codes.
    login(api, "bo@example.com", status=429)


def test_an_expired_or_forged_challenge_is_refused(api, make_staff, clock, settings):
    bo = make_staff("AGENT", email="bo@example.com")
    secret, _ = enrol(api, clock, "bo@example.com")
    challenge = login(api, "bo@example.com").json["challenge"]
    clock.advance(minutes=6)
    resp = api.post_json(
        "/api/auth/login/2fa",
        {"challenge": challenge, "code": code_at(secret, clock())},
        status=401,
    )
    assert "expired" in resp.json["error"]["message"]
    forged = ChallengeTokens("another key of forty characters at least!", clock=clock).issue(bo)
    for bad in (forged.token, challenge + "x", "not a token"):
        api.post_json(
            "/api/auth/login/2fa",
            {"challenge": bad, "code": code_at(secret, clock())},
            status=401,
        )
    # A session token is no challenge either.
    token, _ = TokenService(settings.secret_key, timedelta(hours=1)).issue(bo)
    api.post_json(
        "/api/auth/login/2fa", {"challenge": token, "code": code_at(secret, clock())}, status=401
    )
    resp = api.post_json("/api/auth/login/2fa", {"code": "123456"}, status=422)
    assert "challenge" in resp.json["error"]["details"]


# --- turning it off, and an ADMIN's reset ------------------------------------------------


def _session_with_code(api, clock, email, secret) -> str:
    challenge = login(api, email).json["challenge"]
    token = api.post_json(
        "/api/auth/login/2fa", {"challenge": challenge, "code": code_at(secret, clock())}
    ).json["token"]
    clock.advance(seconds=30)
    return token


def test_turning_it_off_takes_the_password_and_a_code(api, make_staff, clock, db):
    bo = make_staff("AGENT", email="bo@example.com")
    secret, codes = enrol(api, clock, "bo@example.com")
    token = _session_with_code(api, clock, "bo@example.com", secret)
    now = code_at(secret, clock())
    resp = api.delete_json(
        "/api/me/2fa", {"password": "wrong password!", "code": now}, headers=auth(token), status=422
    )
    assert "password" in resp.json["error"]["details"]
    resp = api.delete_json(
        "/api/me/2fa",
        {"password": STAFF_PASSWORD, "code": "zzzzz-zzzzz"},
        headers=auth(token),
        status=422,
    )
    assert "code" in resp.json["error"]["details"]
    api.delete_json(
        "/api/me/2fa",
        {"password": STAFF_PASSWORD, "code": codes[0]},
        headers=auth(token),
        status=204,
    )
    assert api.get("/api/me/2fa", headers=auth(token)).json == {
        "enabled": False,
        "enrolment_started": False,
        "required": False,
        "recovery_codes_left": 0,
    }
    api.reset()
    assert "token" in login(api, "bo@example.com").json
    [off] = audit_rows(db, "TWO_FACTOR_DISABLED")
    assert (off["actor_id"], off["target_id"]) == (bo["id"], str(bo["id"]))
    assert len(audit_rows(db, "RECOVERY_CODE_USED")) == 1


def test_an_admin_resets_another_users_two_factor(api, make_staff, clock, db, bearer):
    ana = make_staff("ADMIN", email="ana@example.com")
    sub = make_staff("SUB_ADMIN", email="sue@example.com")
    bo = make_staff("AGENT", email="bo@example.com")
    enrol(api, clock, "bo@example.com")
    resp = api.delete(f"/api/users/{bo['id']}/2fa", headers=bearer(sub), status=403)
    assert resp.json["error"]["code"] == "forbidden"
    api.delete("/api/users/999999/2fa", headers=bearer(ana), status=404)
    api.delete(f"/api/users/{ana['id']}/2fa", headers=bearer(ana), status=403)  # not one's own
    assert audit_rows(db, "TWO_FACTOR_RESET") == []
    api.delete(f"/api/users/{bo['id']}/2fa", headers=bearer(ana), status=204)
    assert "token" in login(api, "bo@example.com").json  # the password alone again
    [reset] = audit_rows(db, "TWO_FACTOR_RESET")
    assert (reset["actor_id"], reset["target_type"], reset["target_id"]) == (
        ana["id"],
        "user",
        str(bo["id"]),
    )
    # Nothing left to reset: 204 again, and nothing more recorded.
    api.delete(f"/api/users/{bo['id']}/2fa", headers=bearer(ana), status=204)
    assert len(audit_rows(db, "TWO_FACTOR_RESET")) == 1


# --- REQUIRE_2FA_FOR -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "role", "covered"),
    [
        ("admin", "ADMIN", True),
        ("admin", "AGENT", False),
        ("all", "AGENT", True),
        ("all", "SUB_ADMIN", True),
        ("none", "ADMIN", False),
    ],
)
def test_require_2fa_for_lets_a_covered_user_only_enrol(
    settings, db, make_staff, clock, policy, role, covered
):
    api = make_client(settings, db, clock, require_2fa_for=policy)
    make_staff(role, email="kim@example.com")
    session = login(api, "kim@example.com").json
    assert session["must_enrol"] is covered
    headers = auth(session["token"])
    if not covered:
        api.get("/api/tickets", headers=headers, status=200)
        return
    resp = api.get("/api/tickets", headers=headers, status=403)
    assert resp.json["error"]["code"] == "two_factor_enrolment_required"
    assert "two-factor" in resp.json["error"]["message"]
    api.get("/api/me/notifications", headers=headers, status=403)
    api.post_json(
        "/api/auth/password",
        {"current_password": STAFF_PASSWORD, "new_password": "a brand new passphrase"},
        headers=headers,
        status=403,
    )
    # What enrolling needs is open: who one is, the state, enrolling, logging out.
    assert api.get("/api/auth/me", headers=headers).json["user"]["email"] == "kim@example.com"
    assert api.get("/api/me/2fa", headers=headers).json["required"] is True
    secret = api.post("/api/me/2fa", headers=headers).json["secret"]
    api.post_json("/api/me/2fa/confirm", {"code": code_at(secret, clock())}, headers=headers)
    # Enrolled: the same session goes on, everywhere.
    api.get("/api/tickets", headers=headers, status=200)
    # A covered user cannot turn it off (an ADMIN resets it instead).
    clock.advance(seconds=30)
    resp = api.delete_json(
        "/api/me/2fa",
        {"password": STAFF_PASSWORD, "code": code_at(secret, clock())},
        headers=headers,
        status=403,
    )
    assert "cannot be turned off" in resp.json["error"]["message"]
    api.post("/api/auth/logout", headers=headers, status=204)


# --- the audit rows of logging in and out ------------------------------------------------


def test_logins_failures_and_logouts_are_audited(api, make_staff, db):
    bo = make_staff("AGENT", email="bo@example.com")
    make_staff("AGENT", email="gone@example.com", is_active=False)
    login(api, "BO@example.com", "not the password", status=401)
    login(api, "nobody@example.com", status=401)
    login(api, "gone@example.com", status=401)
    token = login(api, "bo@example.com").json["token"]
    api.post("/api/auth/logout", headers=auth(token), status=204)
    failed = audit_rows(db, "LOGIN_FAILED")
    assert [(r["subject"], r["data"]["reason"]) for r in failed] == [
        ("bo@example.com", "password"),
        ("nobody@example.com", "unknown_account"),
        ("gone@example.com", "inactive"),
    ]
    assert failed[0]["actor_id"] == bo["id"]
    assert failed[1]["actor_id"] is None
    assert all(str(r["client_ip"]) == "127.0.0.1" for r in failed)
    [logged_in] = audit_rows(db, "LOGIN")
    assert (logged_in["actor_id"], logged_in["data"]) == (bo["id"], {"method": "password"})
    [logged_out] = audit_rows(db, "LOGOUT")
    assert logged_out["actor_id"] == bo["id"]


def test_enabling_is_audited(api, make_staff, clock, db):
    bo = make_staff("AGENT", email="bo@example.com")
    secret, _ = enrol(api, clock, "bo@example.com")
    [enabled] = audit_rows(db, "TWO_FACTOR_ENABLED")
    assert (enabled["actor_id"], enabled["target_id"]) == (bo["id"], str(bo["id"]))
    _session_with_code(api, clock, "bo@example.com", secret)
    [*_, last] = audit_rows(db, "LOGIN")
    assert last["data"] == {"method": "password", "two_factor": "totp"}


def test_after_a_key_change_codes_fail_and_a_recovery_code_still_works(
    api, settings, db, make_staff, clock
):
    """ENCRYPTION_KEY changed: the sealed secret cannot be opened, so no TOTP code is
    right (never a 500); a recovery code (a hash, no key) still lets its owner in."""
    make_staff("AGENT", email="bo@example.com")
    secret, codes = enrol(api, clock, "bo@example.com")
    rekeyed = make_client(settings, db, clock, encryption_key=Fernet.generate_key().decode())
    challenge = login(rekeyed, "bo@example.com").json["challenge"]
    resp = rekeyed.post_json(
        "/api/auth/login/2fa",
        {"challenge": challenge, "code": code_at(secret, clock())},
        status=401,
    )
    assert resp.json["error"]["code"] == "invalid_code"
    rekeyed.post_json("/api/auth/login/2fa", {"challenge": challenge, "code": codes[0]})


def test_require_2fa_for_holds_an_api_token_to_enrolment_too(settings, db, make_staff, clock):
    """A token made before the policy (or before an ADMIN's reset) reaches no more than its
    user's session would: enrolment, until they enrol."""
    make_staff("ADMIN", email="kim@example.com")
    before = make_client(settings, db, clock)
    headers = auth(login(before, "kim@example.com").json["token"])
    token = before.post_json("/api/me/tokens", {"name": "CI"}, headers=headers).json["token"]
    before.get("/api/tickets", headers=auth(token), status=200)

    api = make_client(settings, db, clock, require_2fa_for="admin")
    resp = api.get("/api/tickets", headers=auth(token), status=403)
    assert resp.json["error"]["code"] == "two_factor_enrolment_required"
    api.get("/api/users", headers=auth(token), status=403)
    assert api.get("/api/me/2fa", headers=auth(token)).json["required"] is True
    secret = api.post("/api/me/2fa", headers=auth(token)).json["secret"]
    api.post_json("/api/me/2fa/confirm", {"code": code_at(secret, clock())}, headers=auth(token))
    api.get("/api/tickets", headers=auth(token), status=200)
