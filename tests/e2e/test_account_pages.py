"""The password-reset pages and the API tokens page in Chromium, with JavaScript on: each
passes the axe-core audit and the page's CSP (DESIGN.md section 13). The worker's side of a
reset runs in this process (worker/password_resets.py) on the live server's services."""

from __future__ import annotations

import re

from supportdesk.accounts.password_resets import PasswordResets
from supportdesk.core.redis_client import make_redis
from supportdesk.mail.outbound.password_reset import ResetMailer
from supportdesk.worker.password_resets import ResetRequestsLoop
from tests.conftest import STAFF_PASSWORD
from tests.e2e.test_journey import Pages

_LINK = re.compile(r"https?://\S+(/password-reset/confirm\?token=\S+)")


def test_forgot_password_then_a_token_in_a_browser(page, screenshots, settings, db, make_staff):
    pages = Pages(screenshots, prefix="account")
    make_staff("AGENT", email="ana@example.com", name="Ana Agent")
    page.goto("/login")
    page.click("text=Forgot your password?")
    page.wait_for_url("**/password-reset")
    pages.keep(page, "forgot")
    page.fill("#email", "ana@example.com")
    page.click("button[type=submit]")
    page.wait_for_url("**/password-reset?sent=1")
    pages.keep(page, "sent")
    redis_client = make_redis(settings)
    resets = PasswordResets.from_settings(db, redis_client, settings)
    loop = ResetRequestsLoop(resets, ResetMailer(db, redis_client, resets, settings), settle=0)
    assert loop.step(5) is True
    with db.transaction() as conn:
        [body] = conn.execute(
            "SELECT body_text FROM email_outbox WHERE kind = 'PASSWORD_RESET'"
        ).fetchone()
    page.goto(_LINK.search(body).group(1))
    pages.keep(page, "set-password")
    page.fill("#new_password", "short")
    page.click("button[type=submit]")
    pages.keep(page, "set-password-refused")
    page.fill("#new_password", "a new passphrase in the browser")
    page.click("button[type=submit]")
    page.wait_for_url("**/login?notice=password_set")
    pages.keep(page, "password-set")
    page.fill("#email", "ana@example.com")
    page.fill("#password", STAFF_PASSWORD)  # the old one no longer opens
    page.click("button[type=submit]")
    page.wait_for_selector(".alert.error")
    page.fill("#email", "ana@example.com")
    page.fill("#password", "a new passphrase in the browser")
    page.click("button[type=submit]")
    page.wait_for_url("**/tickets")

    page.click("text=API tokens")
    page.wait_for_url("**/account/tokens")
    pages.keep(page, "tokens-none")
    page.fill("#name", "Nightly export")
    page.select_option("#lifetime", "30")
    page.click("text=Make token")
    token = page.input_value("#new-token")
    assert token.startswith("sd_pat_")
    pages.keep(page, "token-made")
    page.goto("/account/tokens")
    assert "Nightly export" in page.content()
    assert token not in page.content()
    pages.keep(page, "tokens-listed")
    page.click("form[action$='/revoke'] button")
    page.wait_for_url("**/account/tokens?notice=revoked")
    pages.keep(page, "token-revoked")
