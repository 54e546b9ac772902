"""Access tokens of OAuth mailboxes: refreshed ahead of expiry, a rotated refresh token kept
(also when two processes refresh at once), a refused refresh -> REAUTHORIZE, shown in
/healthz and emailed to the ADMINs once, then connecting again -> OK."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import webtest

from supportdesk.core.redis_client import make_redis
from supportdesk.mail.mailboxes.connect import Reauthorize
from supportdesk.mail.mailboxes.tokens import AccessTokens, TokenUnavailable
from supportdesk.mail.outbound.mailbox_alerts import ReauthorizeAlerts
from supportdesk.mail.outbound.outbox import EMAIL_QUEUE
from tests.conftest import shared_app
from tests.oauthserver import connect_mailbox, insert_mailbox, mailbox_row

USER = "support@acme.example"


@pytest.fixture
def make_tokens(db, configured, box, redis_client):
    def make(**over) -> AccessTokens:
        alerts = ReauthorizeAlerts(db, make_redis(configured), configured)
        return AccessTokens(db, configured, box, on_reauthorize=alerts, **over)

    return make


def _expire(db, mailbox_id: int) -> None:
    """The stored access token's time is up (an hour later)."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE mailboxes SET access_token_expires_at = now() WHERE id = %s", (mailbox_id,)
        )


@pytest.fixture
def mailbox(db):
    with db.transaction() as conn:
        return insert_mailbox(conn)


def test_a_token_with_time_to_live_is_used_as_stored(make_tokens, mailbox, db, box, oauth):
    issued = connect_mailbox(db, box, oauth, mailbox["id"], USER, expires_in=3600)
    assert make_tokens().current(mailbox_row(db, mailbox["id"])) == issued["access_token"]
    assert oauth.token_requests == []


def test_a_token_is_refreshed_ahead_of_its_expiry(make_tokens, mailbox, db, box, oauth):
    """Four minutes left is too little (the margin is five): a new token is fetched while
    the old one still works, and stored sealed with its expiry."""
    issued = connect_mailbox(db, box, oauth, mailbox["id"], USER, expires_in=240)
    assert oauth.is_active(issued["access_token"])
    fresh = make_tokens().current(mailbox_row(db, mailbox["id"]))
    assert fresh != issued["access_token"]
    assert oauth.is_active(fresh).username == USER
    [refresh] = oauth.token_requests
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["refresh_token"] == issued["refresh_token"]
    row = mailbox_row(db, mailbox["id"])
    assert box.open(row["access_token_encrypted"]) == fresh
    assert row["access_token_expires_at"] - row["updated_at"] > timedelta(minutes=59)
    # The refresh token was not rotated: the stored one stays.
    assert box.open(row["secret_encrypted"]) == issued["refresh_token"]


def test_a_rotated_refresh_token_is_kept(make_tokens, mailbox, db, box, oauth):
    """A provider that rotates (Microsoft) retires the old refresh token at each refresh:
    the next refresh works only if the new one was stored."""
    oauth.rotate = True
    issued = connect_mailbox(db, box, oauth, mailbox["id"], USER, expires_in=0)
    tokens = make_tokens()
    tokens.current(mailbox_row(db, mailbox["id"]))
    rotated = box.open(mailbox_row(db, mailbox["id"])["secret_encrypted"])
    assert rotated != issued["refresh_token"]
    assert issued["refresh_token"] not in oauth.refresh  # retired by the server
    _expire(db, mailbox["id"])  # the next refresh would be invalid_grant with the old token
    assert oauth.is_active(tokens.current(mailbox_row(db, mailbox["id"])))
    assert mailbox_row(db, mailbox["id"])["status"] == "OK"
    assert len(oauth.token_requests) == 2


def test_two_processes_refreshing_at_once_refresh_once(make_tokens, mailbox, db, box, oauth):
    """The row lock makes the second wait for the first's refresh and use its token:
    one request to the provider, and the rotated refresh token is not lost."""
    oauth.rotate = True
    oauth.token_delay = 0.5
    connect_mailbox(db, box, oauth, mailbox["id"], USER, expires_in=0)
    stale = mailbox_row(db, mailbox["id"])
    results: list[str] = []

    def refresh() -> None:
        results.append(make_tokens().current(stale))

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 2
    assert results[0] == results[1]
    assert len(oauth.token_requests) == 1
    stored = box.open(mailbox_row(db, mailbox["id"])["secret_encrypted"])
    assert oauth.refresh[stored] == USER  # the live refresh token is the one stored


def test_a_provider_that_is_down_is_transient(make_tokens, mailbox, db, box, oauth):
    connect_mailbox(db, box, oauth, mailbox["id"], USER, expires_in=0)
    oauth.down = True
    with pytest.raises(TokenUnavailable, match="token endpoint"):
        make_tokens().current(mailbox_row(db, mailbox["id"]))
    row = mailbox_row(db, mailbox["id"])
    assert row["status"] == "OK"
    assert row["last_error"] is None
    oauth.down = False
    assert make_tokens().current(row)


def test_a_refused_refresh_asks_for_reauthorization_once_then_connecting_again_resumes(
    make_tokens, mailbox, db, box, oauth, configured, make_staff, tokens, redis_client
):
    admins = [make_staff("ADMIN"), make_staff("ADMIN")]
    make_staff("ADMIN", is_active=False)
    make_staff("SUB_ADMIN")
    connect_mailbox(db, box, oauth, mailbox["id"], USER, expires_in=0)
    oauth.revoke(USER)
    access = make_tokens()

    with pytest.raises(Reauthorize, match="invalid_grant"):
        access.current(mailbox_row(db, mailbox["id"]))
    row = mailbox_row(db, mailbox["id"])
    assert row["status"] == "REAUTHORIZE"
    assert "invalid_grant" in row["last_error"]
    assert "revoked" in row["last_error"]
    assert row["access_token_encrypted"] is None

    # Asked again (the fetcher's next round, the worker's next email): refused at once,
    # without asking the provider, and no second email.
    with pytest.raises(Reauthorize):
        access.current(row)
    with pytest.raises(Reauthorize):
        access.refresh(mailbox["id"])
    assert len(oauth.token_requests) == 1

    with db.transaction() as conn:
        alerts = conn.execute(
            "SELECT to_address, kind::text, subject, body_text, headers, ticket_id "
            "FROM email_outbox ORDER BY id"
        ).fetchall()
    assert sorted(a[0] for a in alerts) == sorted(a["email"] for a in admins)
    for _to, kind, subject, body, headers, ticket_id in alerts:
        assert kind == "NOTICE"
        assert subject == "Mailbox support@acme.example must be connected again"
        assert "invalid_grant" in body
        assert f"{configured.public_base_url}/mailboxes" in body
        assert headers == {"Auto-Submitted": "auto-generated"}
        assert ticket_id is None
    assert redis_client.llen(EMAIL_QUEUE) == 2  # queued after the commit

    app = shared_app(configured, db)
    health = webtest.TestApp(app).get("/healthz").json
    assert health["status"] == "ok"
    assert health["mailboxes"]["reauthorize"] == [
        {"id": mailbox["id"], "address": USER, "since": row["updated_at"].isoformat()}
    ]

    # The ADMIN connects it again: OK, tokens work, /healthz is clear.
    browser = webtest.TestApp(app)
    browser.set_cookie("session", tokens.issue(admins[0])[0])
    start = browser.get(f"/mailboxes/{mailbox['id']}/oauth/start", status=302)
    oauth.revoked_users.clear()  # the user consents again
    back = urlsplit(oauth.accept(start.headers["Location"], USER))
    browser.get(f"{back.path}?{back.query}", status=303)
    row = mailbox_row(db, mailbox["id"])
    assert (row["status"], row["last_error"]) == ("OK", None)
    assert oauth.is_active(access.current(row)).username == USER
    assert webtest.TestApp(app).get("/healthz").json["mailboxes"] == {"reauthorize": []}

    # A later refusal is a new occurrence: a new email to each ADMIN.
    oauth.revoke(USER)
    _expire(db, mailbox["id"])
    with pytest.raises(Reauthorize):
        access.current(mailbox_row(db, mailbox["id"]))
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM email_outbox").fetchone()[0] == 4


def test_a_mailbox_never_connected_is_not_refreshed(make_tokens, mailbox, db, oauth):
    with pytest.raises(Reauthorize, match="not been connected"):
        make_tokens().current(mailbox_row(db, mailbox["id"]))
    assert oauth.token_requests == []
    assert mailbox_row(db, mailbox["id"])["status"] == "NEW"


def test_timing_is_bounded(make_tokens, mailbox, db, box, oauth):
    """A token endpoint that does not answer in time is TokenUnavailable, not a hang."""
    connect_mailbox(db, box, oauth, mailbox["id"], USER, expires_in=0)
    oauth.token_delay = 3
    started = time.monotonic()
    with pytest.raises(TokenUnavailable):
        make_tokens(timeout=0.5).current(mailbox_row(db, mailbox["id"]))
    assert time.monotonic() - started < 2.5
