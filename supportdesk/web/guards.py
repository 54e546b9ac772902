"""Who may call a route, and the session cookie.

Who may call a route is declared once, in `supportdesk/web/routes.py` with the levels below;
`middleware.AuthMiddleware` enforces it with `guard` before any responder runs. Finer rules
(an AGENT reaches only its own tickets, a SUB_ADMIN manages only AGENTs) live in the
services, next to the data they protect.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import falcon

from supportdesk.accounts.two_factor import EnrolmentRequired
from supportdesk.core.errors import Forbidden, NotFound, Unauthenticated
from supportdesk.core.vocabulary import is_manager

SESSION_COOKIE = "session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Who may call an operation (the `who` of routes.Operation).
ANYONE = "anyone"
STAFF = "staff"  # any active staff user
MANAGERS = "managers"  # ADMIN and SUB_ADMIN
ADMINS = "admins"  # ADMIN only
STAFF_OR_LINK = "staff_or_link"  # any active staff user, or a valid signed link
LINK = "signed_link"  # a valid signed link only (the customer's view of a ticket)
PROVIDER = "signed_webhook"  # the mail provider: an HMAC of the body (WebhookSignature)
# Any active staff user, including one whom REQUIRE_2FA_FOR covers and who has not enrolled
# yet (`must_enrol`, set by middleware.staff_loader): enrolling, and what it needs (who one
# is, logging out). Every other staff route refuses such a user with EnrolmentRequired.
ENROLLING = "staff_enrolling"

# --- the guard (middleware.AuthMiddleware applies it) ----------------------------------------


def guard(who: str, user: Mapping[str, Any] | None, *, signed_link: bool = False) -> None:
    """Enforce a route's `who` for the (possibly absent) authenticated user; `signed_link`
    says the request carries a link the middleware has verified (SignedLinks)."""
    if who == ANYONE or (who in (STAFF_OR_LINK, LINK) and signed_link):
        return
    if who == LINK:
        raise NotFound("This link is not valid.")
    if user is None:
        raise Unauthenticated()
    if who == ENROLLING:
        return
    if user.get("must_enrol"):
        raise EnrolmentRequired()
    if who == STAFF_OR_LINK:
        return
    if who == MANAGERS and not is_manager(user):
        raise Forbidden()
    if who == ADMINS and user["role"] != "ADMIN":
        raise Forbidden()
    if who not in (STAFF, MANAGERS, ADMINS, PROVIDER, STAFF_OR_LINK):
        raise Forbidden()  # an unknown level protects by refusing


def set_session_cookie(resp: falcon.Response, token: str, max_age: int, secure: bool) -> None:
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        http_only=True,
        same_site="Lax",
    )


def clear_session_cookie(resp: falcon.Response, secure: bool) -> None:
    """Expire the cookie with the same attributes it was set with."""
    resp.set_cookie(
        SESSION_COOKIE,
        "",
        max_age=0,
        expires=datetime(1970, 1, 1, tzinfo=UTC),
        path="/",
        secure=secure,
        http_only=True,
        same_site="Lax",
    )
