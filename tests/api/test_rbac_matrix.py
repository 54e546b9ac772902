"""Every route x every kind of caller -> the expected status, from one table.

Columns (callers):
  anon        no credentials
  agent       an AGENT
  assigned    an AGENT assigned to the ticket in question (ticket routes; else as agent)
  sub         a SUB_ADMIN
  admin       an ADMIN
  inactive    an ADMIN deactivated after the token was issued
  expired     an ADMIN with an expired token
  tampered    an ADMIN token whose claims were changed without re-signing
  nocsrf      an ADMIN authenticated by the session cookie, without the CSRF token

API routes use Bearer tokens (the cookie for `nocsrf`); page routes use the session cookie
with the CSRF token, as a browser does. `LOGIN` means a redirect to the login page.

Every row is run under both values of AGENTS_SEE_UNASSIGNED (DESIGN.md section 12): a row
whose answers do not depend on it gives one tuple, which must hold under both; a row whose
answers do gives `Reach(off=..., on=...)`. `{pid}` is assigned to the `assigned` AGENT (the
setting never opens it to the other); `{open_pid}` is assigned to nobody.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import falcon.inspect
import pytest
import webtest

from supportdesk.accounts.auth import TokenService
from supportdesk.core.config import Settings
from supportdesk.core.redis_client import make_redis
from supportdesk.core.signing import sign
from supportdesk.dev.embedded import free_port
from supportdesk.files.storage import LocalStorage
from supportdesk.web.app import create_app
from supportdesk.web.guards import ANYONE
from supportdesk.web.resources.tickets import CONFIRMATION
from supportdesk.web.routes import ROUTES, Operation, Route, served_routes
from tests.conftest import STAFF_PASSWORD, hashed, shared_app
from tests.factories import (
    make_attachment,
    make_message,
    make_outbox,
    make_quarantined,
    make_saved_reply_file,
    make_ticket,
    make_user,
)

LOGIN = "->login"
PARTICIPANT = "dana@example.org"  # copied on the world's ticket
UPLOAD = "upload"  # the body: multipart/form-data with one file under `attachments`
CALLERS = ("anon", "agent", "assigned", "sub", "admin", "inactive", "expired", "tampered", "nocsrf")


class Reach(NamedTuple):
    """The answers of a row that depend on AGENTS_SEE_UNASSIGNED, per caller."""

    off: tuple[Any, ...]
    on: tuple[Any, ...]


@dataclass
class World:
    users: dict[str, dict[str, Any]]
    target_agent: dict[str, Any]
    login_user: dict[str, Any]
    ticket: dict[str, Any]
    open_ticket: dict[str, Any]  # unassigned
    open_attachment_id: int  # a file of the unassigned ticket
    outbox_id: int  # a DEAD delivery, for the retry routes
    attachment_id: int  # a file of the ticket's first message
    mailbox_id: int  # a mailbox whose server does not answer (its test is a 422)
    quarantine_id: int  # an email kept in the quarantine
    message_id: int  # the ticket's first message, an email with its HTML kept
    shared_reply_id: int = 0  # a shared saved reply (made by an ADMIN)
    personal_reply_id: int = 0  # the `assigned` AGENT's own saved reply
    webhook_id: int = 0  # an outgoing webhook
    webhook_delivery_id: int = 0  # a DEAD delivery of it, for the retry routes
    shared_file_id: int = 0  # a file of the shared saved reply
    personal_file_id: int = 0  # a file of the personal one


def _new_ticket() -> dict[str, str]:
    return {
        "name": "Cleo Customer",
        "email": "cleo@example.org",
        "subject": "Printer jam",
        "body": "Paper is stuck in tray 2.",
    }


def _staff_email() -> dict[str, str]:
    return {"to": "Cleo Customer <cleo@example.org>", "subject": "Your order", "body": "Hello."}


def _new_mailbox() -> dict[str, str]:
    return {"address": "new@example.com", "imap_host": "imap.example.com", "password": "pw"}


def _new_webhook() -> dict[str, Any]:
    # A public address as a literal: nothing is resolved or connected to at registration.
    return {"url": "https://93.184.215.14/hook", "events": ["ticket.created"], "secret": "s" * 20}


def _new_user() -> dict[str, str]:
    return {
        "email": "fresh@example.com",
        "name": "Fresh",
        "role": "AGENT",
        "password": "long enough pw",
    }


# (method, path, body) -> expected status per caller, in CALLERS order.
# A path may use {agent_id}; a body may be a callable of the World.
MATRIX: list[tuple[str, str, Any, tuple[Any, ...]]] = [
    # method, path,                     body,                 anon agent asgd sub  admin inact exp  tamp nocsrf
    ("GET",   "/healthz",               None,                (200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",   "/api/openapi.json",      None,                (200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",  "/api/auth/login",        "login",             (200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",  "/api/auth/logout",       None,                (401, 204, 204, 204, 204, 401, 401, 401, 403)),
    ("GET",   "/api/auth/me",           None,                (401, 200, 200, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/auth/password",     "password",          (401, 200, 200, 200, 200, 401, 401, 401, 403)),
    ("GET",   "/api/users",             None,                (401, 403, 403, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/users",             "new_user",          (401, 403, 403, 201, 201, 401, 401, 401, 403)),
    ("PATCH", "/api/users/{agent_id}",  {"name": "Renamed"}, (401, 403, 403, 200, 200, 401, 401, 401, 403)),
    # two-factor (section 13): one's own for every staff member (nothing started: 409s);
    # an ADMIN resets another's; the login's code step is open to anyone (a forged challenge)
    ("POST",  "/api/auth/login/2fa",    "login_code",        (401, 401, 401, 401, 401, 401, 401, 401, 401)),
    ("GET",   "/api/me/2fa",            None,                (401, 200, 200, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/me/2fa",            None,                (401, 200, 200, 200, 200, 401, 401, 401, 403)),
    ("DELETE", "/api/me/2fa",           "two_factor_off",    (401, 409, 409, 409, 409, 401, 401, 401, 403)),
    ("POST",  "/api/me/2fa/confirm",    {"code": "123456"},  (401, 409, 409, 409, 409, 401, 401, 401, 403)),
    ("DELETE", "/api/users/{agent_id}/2fa", None,            (401, 403, 403, 403, 204, 401, 401, 401, 403)),
    ("POST",  "/login/2fa",             "login_code_form",   (401, 401, 401, 401, 401, 401, 401, 401, 401)),
    ("GET",   "/account/two-factor",    None,                (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/account/two-factor",    "form",              (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/account/two-factor/confirm", "two_factor_code_form", (LOGIN, 409, 409, 409, 409, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/account/two-factor/disable", "two_factor_off_form", (LOGIN, 409, 409, 409, 409, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/users/{agent_id}/two-factor/reset", "form",  (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    # notifications (section 12): one's own preferences, for every staff member
    ("GET",   "/api/me/notifications",  None,                (401, 200, 200, 200, 200, 401, 401, 401, 200)),
    ("PUT",   "/api/me/notifications",  "preferences",       (401, 200, 200, 200, 200, 401, 401, 401, 403)),
    ("GET",   "/account/notifications", None,                (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/account/notifications", "preferences_form",  (LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    # password reset (section 13): the same answer for everyone; a link that is not ours is a 422
    ("POST",  "/api/auth/password-reset", "reset",           (202, 202, 202, 202, 202, 202, 202, 202, 202)),
    ("POST",  "/api/auth/password-reset/confirm", "reset_confirm", (422, 422, 422, 422, 422, 422, 422, 422, 422)),
    ("GET",   "/password-reset",        None,                (200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",  "/password-reset",        "reset_form",        (303, 303, 303, 303, 303, 303, 303, 303, 303)),
    ("GET",   "/password-reset/confirm?token=1.2.x", None,   (422, 422, 422, 422, 422, 422, 422, 422, 422)),
    ("POST",  "/password-reset/confirm", "reset_confirm_form", (422, 422, 422, 422, 422, 422, 422, 422, 422)),
    # API tokens (section 13): one's own; another's is a 404 ({admin_token}: the admin's)
    ("GET",   "/api/me/tokens",         None,                (401, 200, 200, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/me/tokens",         "api_token",         (401, 201, 201, 201, 201, 401, 401, 401, 403)),
    ("DELETE", "/api/me/tokens/{admin_token}", None,         (401, 404, 404, 404, 204, 401, 401, 401, 403)),
    ("GET",   "/account/tokens",        None,                (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/account/tokens",        "api_token_form",    (LOGIN, 201, 201, 201, 201, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/account/tokens/{admin_token}/revoke", "form", (LOGIN, 404, 404, 404, 303, LOGIN, LOGIN, LOGIN, 403)),
    # pages
    ("GET",   "/login",                 None,                (200, 303, 303, 303, 303, 200, 200, 200, 303)),
    ("POST",  "/login",                 "login_form",        (303, 303, 303, 303, 303, 303, 303, 303, 303)),
    ("POST",  "/logout",                "form",              (LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/account/password",      None,                (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/account/password",      "password_form",     (LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/users",                 None,                (LOGIN, 403, 403, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/users",                 "new_user_form",     (LOGIN, 403, 403, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/users/{agent_id}",      None,                (LOGIN, 403, 403, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/users/{agent_id}",      "edit_form",         (LOGIN, 403, 403, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    # tickets: {pid} is assigned to the `assigned` AGENT; the plain `agent` may not see it
    ("POST",  "/api/tickets",           "new_ticket",        (201, 201, 201, 201, 201, 201, 201, 201, 201)),
    # The same route with `to`: a staff member's email to a customer, never sent without a
    # staff session (a stale one, or a cookie without its CSRF token, counts as none).
    ("POST",  "/api/tickets",           "staff_email",       (401, 201, 201, 201, 201, 401, 401, 401, 401)),
    ("GET",   "/api/tickets",           None,                (401, 200, 200, 200, 200, 401, 401, 401, 200)),
    ("GET",   "/api/tickets/{pid}",     None,                (401, 404, 200, 200, 200, 401, 401, 401, 200)),
    ("PATCH", "/api/tickets/{pid}",     {"priority": "HIGH"}, (401, 404, 200, 200, 200, 401, 401, 401, 403)),
    ("POST",  "/api/tickets/{pid}/assign", "assign",         (401, 403, 403, 200, 200, 401, 401, 401, 403)),
    ("GET",   "/api/tickets/{pid}/events", None,             (401, 404, 200, 200, 200, 401, 401, 401, 200)),
    ("GET",   "/api/attachments/{attachment_id}", None,      (401, 404, 200, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/tickets/{pid}/take", None,               (401, 404, 200, 200, 200, 401, 401, 401, 403)),
    # following: whoever may see the ticket
    ("POST",  "/api/tickets/{pid}/follow", None,             (401, 404, 200, 200, 200, 401, 401, 401, 403)),
    ("DELETE", "/api/tickets/{pid}/follow", None,            (401, 404, 200, 200, 200, 401, 401, 401, 403)),
    ("POST",  "/tickets/{pid}/follow",  "follow_form",       (LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/api/tickets/{open_pid}/follow", None,        Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 403),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 403))),
    ("DELETE", "/api/tickets/{open_pid}/follow", None,       Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 403),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 403))),
    ("POST",  "/tickets/{open_pid}/follow", "follow_form",   Reach(off=(LOGIN, 404, 404, 303, 303, LOGIN, LOGIN, LOGIN, 403),
                                                                   on=(LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403))),
    # the unassigned ticket: an AGENT reaches it only with AGENTS_SEE_UNASSIGNED
    ("GET",   "/api/tickets/{open_pid}", None,               Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 200),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 200))),
    ("PATCH", "/api/tickets/{open_pid}", {"priority": "HIGH"}, Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 403),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 403))),
    ("POST",  "/api/tickets/{open_pid}/take", None,          Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 403),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 403))),
    ("POST",  "/api/tickets/{open_pid}/assign", "assign",    (401, 403, 403, 200, 200, 401, 401, 401, 403)),
    ("GET",   "/api/tickets/{open_pid}/events", None,        Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 200),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 200))),
    ("GET",   "/api/tickets/{open_pid}/messages", None,      Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 200),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 200))),
    ("POST",  "/api/tickets/{open_pid}/messages", {"body": "Hi"}, Reach(off=(401, 404, 404, 201, 201, 401, 401, 401, 403),
                                                                   on=(401, 201, 201, 201, 201, 401, 401, 401, 403))),
    ("GET",   "/api/attachments/{open_attachment_id}", None, Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 200),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 200))),
    # participants (section 11): the ticket copies {participant}
    ("GET",   "/api/tickets/{pid}/participants", None,       (401, 404, 200, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/tickets/{pid}/participants", "participant", (401, 404, 201, 201, 201, 401, 401, 401, 403)),
    ("DELETE", "/api/tickets/{pid}/participants/{participant}", None, (401, 404, 204, 204, 204, 401, 401, 401, 403)),
    ("POST",  "/tickets/{pid}/participants", "participant_form", (LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/tickets/{pid}/participants/remove", "uncopy_form", (LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    # Only the mail provider's signature opens it (tests/api/test_inbound.py); no session does.
    ("POST",  "/api/inbound/email",     {"from": "a@example.org"}, (401, 401, 401, 401, 401, 401, 401, 401, 401)),
    ("GET",   "/api/outbox",            None,                (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("POST",  "/api/outbox/{outbox_id}/retry", None,         (401, 403, 403, 403, 200, 401, 401, 401, 403)),
    ("GET",   "/api/audit",             None,                (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("GET",   "/audit",                 None,                (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("GET",   "/outbox",                None,                (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/outbox/{outbox_id}/retry", "form",           (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/api/mailboxes",         None,                (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("POST",  "/api/mailboxes",         "new_mailbox",       (401, 403, 403, 403, 201, 401, 401, 401, 403)),
    ("GET",   "/api/mailboxes/{mailbox_id}", None,           (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("PATCH", "/api/mailboxes/{mailbox_id}", {"display_name": "Help"}, (401, 403, 403, 403, 200, 401, 401, 401, 403)),
    ("DELETE", "/api/mailboxes/{mailbox_id}", None,          (401, 403, 403, 403, 204, 401, 401, 401, 403)),
    ("POST",  "/api/mailboxes/{mailbox_id}/test", None,      (401, 403, 403, 403, 422, 401, 401, 401, 403)),
    ("GET",   "/api/webhooks",          None,                (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("POST",  "/api/webhooks",          "new_webhook",       (401, 403, 403, 403, 201, 401, 401, 401, 403)),
    ("PATCH", "/api/webhooks/{webhook_id}", {"active": False}, (401, 403, 403, 403, 200, 401, 401, 401, 403)),
    ("DELETE", "/api/webhooks/{webhook_id}", None,           (401, 403, 403, 403, 204, 401, 401, 401, 403)),
    ("GET",   "/api/webhooks/{webhook_id}/deliveries", None, (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("POST",  "/api/webhooks/deliveries/{webhook_delivery_id}/retry", None, (401, 403, 403, 403, 200, 401, 401, 401, 403)),
    ("GET",   "/webhooks",              None,                (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/webhooks",              "new_webhook_form",  (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/webhooks/{webhook_id}/delete", "form",       (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/webhooks/deliveries/{webhook_delivery_id}/retry", "form", (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/mailboxes",             None,                (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/mailboxes",             "new_mailbox_form",  (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/mailboxes/{mailbox_id}", None,               (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/mailboxes/{mailbox_id}", "mailbox_form",     (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/mailboxes/{mailbox_id}/delete", "form",      (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/mailboxes/{mailbox_id}/test", "form",        (LOGIN, 403, 403, 403, 422, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/api/quarantine",        None,                (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("POST",  "/api/quarantine/{quarantine_id}/ticket", "requester", (401, 403, 403, 403, 201, 401, 401, 401, 403)),
    ("DELETE", "/api/quarantine/{quarantine_id}", None,      (401, 403, 403, 403, 204, 401, 401, 401, 403)),
    ("GET",   "/quarantine",            None,                (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/quarantine/{quarantine_id}/ticket", "requester_form", (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/quarantine/{quarantine_id}/discard", "form", (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/api/tickets/{pid}/messages", None,           (401, 404, 200, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/tickets/{pid}/messages", {"body": "Hi"}, (401, 404, 201, 201, 201, 401, 401, 401, 403)),
    ("GET",   "/api/tickets/{pid}/messages/{message_id}/original", None, (401, 404, 200, 200, 200, 401, 401, 401, 200)),
    ("GET",   "/",                      None,                (200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("POST",  "/",                      "new_ticket_form",   (303, 303, 303, 303, 303, 303, 303, 303, 303)),
    # The customer's view opens with a signed link only (tests/pages/test_customer_view.py).
    ("GET",   "/t/{pid}",               None,                (404, 404, 404, 404, 404, LOGIN, LOGIN, LOGIN, 404)),
    ("POST",  "/t/{pid}",               "form",              (404, 404, 404, 404, 404, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/submitted?{confirmation}", None,             (200, 200, 200, 200, 200, 200, 200, 200, 200)),
    ("GET",   "/tickets",               None,                (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("GET",   "/tickets/new",           None,                (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/tickets/new",           "new_email_form",    (LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/tickets/{pid}",         None,                (LOGIN, 404, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/tickets/{pid}",         "status_form",       (LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/tickets/{pid}/assign",  "assign_form",       (LOGIN, 403, 403, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/tickets/{pid}/messages", "reply_form",       (LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    # The Take button is shown on unassigned tickets: posted for one someone has, a 409.
    ("POST",  "/tickets/{pid}/take",    "form",              (LOGIN, 404, 303, 409, 409, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/tickets/{open_pid}",    None,                Reach(off=(LOGIN, 404, 404, 200, 200, LOGIN, LOGIN, LOGIN, 200),
                                                                   on=(LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200))),
    ("POST",  "/tickets/{open_pid}",    "status_form",       Reach(off=(LOGIN, 404, 404, 303, 303, LOGIN, LOGIN, LOGIN, 403),
                                                                   on=(LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403))),
    ("POST",  "/tickets/{open_pid}/take", "form",            Reach(off=(LOGIN, 404, 404, 303, 303, LOGIN, LOGIN, LOGIN, 403),
                                                                   on=(LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403))),
    ("POST",  "/tickets/{open_pid}/assign", "assign_form",   (LOGIN, 403, 403, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/tickets/{open_pid}/messages", "reply_form",  Reach(off=(LOGIN, 404, 404, 303, 303, LOGIN, LOGIN, LOGIN, 403),
                                                                   on=(LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403))),
    # Merge {pid} (the assigned AGENT's) into {open_pid} (nobody's): both must be in reach
    # (the page says a target out of reach by its form, a 422; a source out of reach is 404).
    ("POST",  "/api/tickets/{pid}/merge", "merge",           Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 403),
                                                                   on=(401, 404, 200, 200, 200, 401, 401, 401, 403))),
    ("POST",  "/tickets/{pid}/merge",   "merge_form",        Reach(off=(LOGIN, 404, 422, 303, 303, LOGIN, LOGIN, LOGIN, 403),
                                                                   on=(LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403))),
    # Split the ticket's email (a customer's, not its only message) off into a new ticket.
    ("POST",  "/api/tickets/{pid}/messages/{message_id}/split", None, (401, 404, 201, 201, 201, 401, 401, 401, 403)),
    ("POST",  "/tickets/{pid}/messages/{message_id}/split", "form", (LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    # Saved replies: shared ones managed by ADMIN and SUB_ADMIN (403 for an AGENT); a
    # personal one (the `assigned` AGENT's) is its owner's alone (404 for everyone else).
    ("GET",   "/api/saved-replies",     None,                (401, 200, 200, 200, 200, 401, 401, 401, 200)),
    ("POST",  "/api/saved-replies",     "saved_reply",       (401, 201, 201, 201, 201, 401, 401, 401, 403)),
    ("POST",  "/api/saved-replies",     "shared_reply",      (401, 403, 403, 201, 201, 401, 401, 401, 403)),
    ("PATCH", "/api/saved-replies/{shared_reply}", {"title": "New"}, (401, 403, 403, 200, 200, 401, 401, 401, 403)),
    ("DELETE", "/api/saved-replies/{shared_reply}", None,    (401, 403, 403, 204, 204, 401, 401, 401, 403)),
    ("PATCH", "/api/saved-replies/{personal_reply}", {"title": "New"}, (401, 404, 200, 404, 404, 401, 401, 401, 403)),
    ("DELETE", "/api/saved-replies/{personal_reply}", None,  (401, 404, 204, 404, 404, 401, 401, 401, 403)),
    ("POST",  "/api/saved-replies/{shared_reply}/render", "render", (401, 404, 200, 200, 200, 401, 401, 401, 403)),
    ("POST",  "/api/saved-replies/{personal_reply}/render", "render", (401, 404, 200, 404, 404, 401, 401, 401, 403)),
    # a saved reply's files: added and removed as the reply is changed, used as it is
    ("POST",  "/api/saved-replies/{shared_reply}/files", UPLOAD, (401, 403, 403, 201, 201, 401, 401, 401, 403)),
    ("POST",  "/api/saved-replies/{personal_reply}/files", UPLOAD, (401, 404, 201, 404, 404, 401, 401, 401, 403)),
    ("GET",   "/api/saved-replies/{shared_reply}/files/{shared_file}", None, (401, 200, 200, 200, 200, 401, 401, 401, 200)),
    ("GET",   "/api/saved-replies/{personal_reply}/files/{personal_file}", None, (401, 404, 200, 404, 404, 401, 401, 401, 404)),
    ("DELETE", "/api/saved-replies/{shared_reply}/files/{shared_file}", None, (401, 403, 403, 204, 204, 401, 401, 401, 403)),
    ("DELETE", "/api/saved-replies/{personal_reply}/files/{personal_file}", None, (401, 404, 204, 404, 404, 401, 401, 401, 403)),
    ("POST",  "/saved-replies/{shared_reply}/files/{shared_file}/delete", "form", (LOGIN, 403, 403, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/saved-replies/{personal_reply}/files/{personal_file}/delete", "form", (LOGIN, 404, 303, 404, 404, LOGIN, LOGIN, LOGIN, 403)),
    # a reply with the shared saved reply's file attached: whoever may reply and use it
    ("POST",  "/api/tickets/{pid}/messages", "reply_with_saved_file", (401, 404, 201, 201, 201, 401, 401, 401, 403)),
    ("POST",  "/api/saved-replies/{shared_reply}/render", "render_open", Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 403),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 403))),
    ("GET",   "/saved-replies",         None,                (LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/saved-replies",         "saved_reply_form",  (LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/saved-replies/{shared_reply}", None,         (LOGIN, 403, 403, 200, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/saved-replies/{shared_reply}", "saved_reply_form", (LOGIN, 403, 403, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/saved-replies/{personal_reply}", None,       (LOGIN, 404, 200, 404, 404, LOGIN, LOGIN, LOGIN, 404)),
    ("POST",  "/saved-replies/{shared_reply}/delete", "form", (LOGIN, 403, 403, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/saved-replies/{personal_reply}/delete", "form", (LOGIN, 404, 303, 404, 404, LOGIN, LOGIN, LOGIN, 403)),
    # The reply box's Insert without JavaScript: the ticket page again, the reply filled in.
    ("POST",  "/tickets/{pid}/saved-reply", "insert_form",   (LOGIN, 404, 200, 200, 200, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/tickets/{open_pid}/saved-reply", "insert_form", Reach(off=(LOGIN, 404, 404, 200, 200, LOGIN, LOGIN, LOGIN, 403),
                                                                   on=(LOGIN, 200, 200, 200, 200, LOGIN, LOGIN, LOGIN, 403))),
    # OAuth (tests/mail/test_oauth_flow.py): no such mailbox; a callback without a state.
    # Bulk actions and spam (issue 22 parts 7-8): results per ticket, so a bulk action is a
    # 200 for all staff (the tickets out of reach are `not_found` in it); assign is managers'.
    ("POST",  "/api/tickets/bulk",      "bulk",              (401, 200, 200, 200, 200, 401, 401, 401, 403)),
    ("POST",  "/api/tickets/bulk",      "bulk_assign",       (401, 403, 403, 200, 200, 401, 401, 401, 403)),
    ("POST",  "/api/tickets/{pid}/spam", None,               (401, 404, 200, 200, 200, 401, 401, 401, 403)),
    ("POST",  "/api/tickets/{open_pid}/spam", None,          Reach(off=(401, 404, 404, 200, 200, 401, 401, 401, 403),
                                                                   on=(401, 200, 200, 200, 200, 401, 401, 401, 403))),
    ("GET",   "/api/blocked-senders",   None,                (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("POST",  "/api/blocked-senders",   {"pattern": "@spam.example"}, (401, 403, 403, 403, 201, 401, 401, 401, 403)),
    ("DELETE", "/api/blocked-senders/{blocked_id}", None,    (401, 403, 403, 403, 204, 401, 401, 401, 403)),
    ("POST",  "/tickets/bulk",          "bulk_form",         (LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/tickets/{pid}/spam",    "form",              (LOGIN, 404, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/tickets/{open_pid}/spam", "form",            Reach(off=(LOGIN, 404, 404, 303, 303, LOGIN, LOGIN, LOGIN, 403),
                                                                   on=(LOGIN, 303, 303, 303, 303, LOGIN, LOGIN, LOGIN, 403))),
    ("GET",   "/blocked-senders",       None,                (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/blocked-senders",       "block_form",        (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("POST",  "/blocked-senders/{blocked_id}/delete", "form", (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    # a customer's personal data (section 13): ADMIN only; {participant} is a customer
    ("GET",   "/api/customers/{participant}/export", None,   (401, 403, 403, 403, 200, 401, 401, 401, 200)),
    ("POST",  "/api/customers/{participant}/erase", None,    (401, 403, 403, 403, 200, 401, 401, 401, 403)),
    ("GET",   "/customer-data",         None,                (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("GET",   "/customer-data/export?email={participant}", None, (LOGIN, 403, 403, 403, 200, LOGIN, LOGIN, LOGIN, 200)),
    ("POST",  "/customer-data/erase",   "erase_form",        (LOGIN, 403, 403, 403, 303, LOGIN, LOGIN, LOGIN, 403)),
    ("GET",   "/mailboxes/{no_mailbox}/oauth/start", None,   (LOGIN, 403, 403, 403, 404, LOGIN, LOGIN, LOGIN, 404)),
    ("GET",   "/oauth/callback",        None,                (LOGIN, 403, 403, 403, 400, LOGIN, LOGIN, LOGIN, 400)),
]  # fmt: skip

SETTINGS = {"off": False, "on": True}  # AGENTS_SEE_UNASSIGNED


def _answers(expected: tuple[Any, ...] | Reach, setting: str) -> tuple[Any, ...]:
    if isinstance(expected, Reach):
        return expected.on if SETTINGS[setting] else expected.off
    return expected


CASES = [
    pytest.param(
        method,
        path,
        body,
        caller,
        SETTINGS[setting],
        _answers(expected, setting)[i],
        id=f"{method} {path} {caller} {setting}",
    )
    for method, path, body, expected in MATRIX
    for i, caller in enumerate(CALLERS)
    for setting in SETTINGS
]


def test_every_row_answers_for_every_caller():
    for method, path, _, expected in MATRIX:
        for answers in expected if isinstance(expected, Reach) else (expected,):
            assert len(answers) == len(CALLERS), (method, path)


def _shape(path: str) -> str:
    return re.sub(r"{\w+(:\w+)?}", "{}", path.split("?")[0])


def _live_operations(app) -> set[tuple[str, str]]:
    """Every (method, path) the running app answers with a responder of ours: what Falcon
    itself routes, read with falcon.inspect, not what the route table says."""
    return {
        (method.method, _shape(route.path))
        for route in falcon.inspect.inspect_routes(app)
        for method in route.methods
        if not method.internal
    }


def test_matrix_covers_every_responder_of_the_live_app(app):
    tested = {(m, _shape(p)) for m, p, _, _ in MATRIX}
    assert _live_operations(app) == tested


def test_route_table_declares_every_responder_of_the_live_app(app):
    declared = {(m, _shape(r.path)) for r in served_routes(False) for m in r.operations}
    assert _live_operations(app) == declared


def test_development_serves_the_mailbox_to_anyone_and_nothing_else_changes(settings, db):
    """The dev-only routes exist in development only (a 404 elsewhere, as the matrix's app
    shows: its live responders are exactly the table without them)."""
    dev_app = create_app(
        settings.replace(environment="development"), db=db, redis_client=make_redis(settings)
    )
    dev_only = {(m, _shape(r.path)) for r in ROUTES if r.dev_only for m in r.operations}
    assert dev_only == {("GET", "/dev/mailbox"), ("GET", "/dev/mailbox/{}")}
    assert _live_operations(dev_app) == {(m, _shape(r.path)) for r in ROUTES for m in r.operations}
    assert all(r.operations["GET"].who == ANYONE for r in ROUTES if r.dev_only)


class _Sneaky:
    """A resource with a responder that the route table does not declare."""

    def on_get(self, req, resp):
        resp.media = {"ok": True}

    def on_delete(self, req, resp):
        resp.media = {"deleted": True}


@pytest.mark.parametrize("caller", ["anon", "admin"])
@pytest.mark.parametrize("method", ["DELETE", "PUT", "OPTIONS"])
def test_an_undeclared_responder_is_refused_for_everyone(
    settings, db, world, tokens, method, caller
):
    """The guard fails closed: a responder without a row in the route table is never
    reached, by anyone (here an `on_delete` beside a declared GET)."""
    declared = Route("/api/sneaky", "sneaky", {"GET": Operation(ANYONE, "declared")})
    app = create_app(
        settings, db=db, redis_client=make_redis(settings), extra_routes=[(declared, _Sneaky())]
    )
    client = webtest.TestApp(app)
    headers = {}
    if caller == "admin":
        token, _ = tokens.issue(world.users["admin"])
        headers["Authorization"] = f"Bearer {token}"
    assert client.get("/api/sneaky", headers=headers).json == {"ok": True}
    resp = client.request("/api/sneaky", method=method, headers=headers, expect_errors=True)
    assert resp.status_int == 405
    assert resp.json["error"]["code"] == "method_not_allowed"
    assert resp.headers["Allow"] == "GET"


@pytest.fixture
def world(db, settings) -> World:
    return build_world(db, settings)


# The world a row left as it found it, for the next row of this process (`kept_world`).
_KEPT: dict[str, Any] = {}
REFUSALS = (401, 403, 404, 405, LOGIN)


@pytest.fixture(scope="module")
def matrix_uploads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("matrix-uploads")


@pytest.fixture
def matrix_settings(base_settings, redis_client, matrix_uploads) -> Settings:
    """The test settings (an empty Redis) over an upload folder that a kept world's files
    stay in."""
    return base_settings.replace(upload_dir=matrix_uploads)


@pytest.fixture
def kept_world(session_db, wiper, matrix_settings) -> World:
    """The world, built again only when the row before may have changed it: a GET or a
    refusal changes nothing (the row says so only after its answer was the expected one).
    Thousands of rows each building it were most of the matrix's time."""
    kept = _KEPT.pop("world", None)
    if kept is not None and kept[0] == wiper.wipes:
        return kept[1]
    wiper.wipe()
    return build_world(session_db, matrix_settings)


def _keep(world: World, wiper, method: str, path: str, caller: str, expected: Any) -> None:
    """Offer the world to the next row if this one cannot have changed it."""
    changes = (
        caller == "inactive"  # its credentials deactivate the user
        or "{blocked_id}" in path  # these add a row to remove
        or "{admin_token}" in path
        or (method != "GET" and expected not in REFUSALS)
    )
    if not changes:
        _KEPT["world"] = (wiper.wipes, world)


def build_world(db, settings) -> World:
    """Built in one transaction (ten staff were ten commits)."""
    with db.transaction() as conn:

        def staff(role: str, **over: Any) -> dict[str, Any]:
            return make_user(
                conn,
                role=role,
                password_hash=hashed(STAFF_PASSWORD, settings.bcrypt_rounds),
                **over,
            )

        users = {
            "agent": staff("AGENT"),
            "assigned": staff("AGENT"),
            "sub": staff("SUB_ADMIN"),
            "admin": staff("ADMIN"),
            "inactive": staff("ADMIN"),
            "expired": staff("ADMIN"),
            "tampered": staff("ADMIN"),
            "nocsrf": staff("ADMIN"),
        }
        target_agent = staff("AGENT", name="Target")
        login_user = staff("AGENT", email="login@example.com")
        ticket = make_ticket(conn, assigned_to=users["assigned"]["id"])
        open_ticket = make_ticket(conn, assigned_to=None)
        open_attachment = make_attachment(
            conn,
            LocalStorage(settings.upload_dir),
            open_ticket["id"],
            make_message(conn, open_ticket["id"])["id"],
        )
        dead = make_outbox(conn, ticket_id=ticket["id"], status="DEAD", last_error="550 no")
        message = make_message(conn, ticket["id"], channel="EMAIL", html_body="<p>Hi</p>")
        make_message(conn, ticket["id"])  # so that `message` is not the only one (split)
        attachment = make_attachment(
            conn, LocalStorage(settings.upload_dir), ticket["id"], message["id"]
        )
        mailbox = conn.execute(
            "INSERT INTO mailboxes (address, imap_host, imap_port, username, secret_encrypted) "
            "VALUES ('support@example.com', '127.0.0.1', %s, 'support', 'sealed') RETURNING id",
            (free_port(),),  # nothing listens there
        ).fetchone()
        kept = make_quarantined(conn)
        conn.execute(
            "INSERT INTO ticket_participants (ticket_id, email, name, added_at) "
            "VALUES (%s, %s, 'Dana', now())",
            (ticket["id"], PARTICIPANT),
        )
        webhook = conn.execute(
            "INSERT INTO webhooks (url, events, secret_encrypted) "
            "VALUES ('https://93.184.215.14/hook', '{ticket.created}', 'sealed') RETURNING id"
        ).fetchone()[0]
        webhook_delivery = conn.execute(
            "INSERT INTO webhook_deliveries (webhook_id, event, ticket_id, payload, status, "
            "attempts, last_error) VALUES (%s, 'ticket.created', %s, '{}', 'DEAD', 8, 'HTTP 500') "
            "RETURNING id",
            (webhook, ticket["id"]),
        ).fetchone()[0]
        replies = {
            name: conn.execute(
                "INSERT INTO saved_replies (title, body, owner_id, created_by) "
                "VALUES (%s, 'Hi {{ customer.first_name }}', %s, %s) RETURNING id",
                (name, owner["id"] if owner else None, users["admin"]["id"]),
            ).fetchone()[0]
            for name, owner in (("shared", None), ("personal", users["assigned"]))
        }
        reply_files = {
            name: make_saved_reply_file(conn, LocalStorage(settings.upload_dir), reply_id)["id"]
            for name, reply_id in replies.items()
        }
    return World(
        users,
        target_agent,
        login_user,
        ticket,
        open_ticket,
        open_attachment["id"],
        dead["id"],
        attachment["id"],
        mailbox[0],
        kept["id"],
        message["id"],
        shared_reply_id=replies["shared"],
        personal_reply_id=replies["personal"],
        webhook_id=webhook,
        webhook_delivery_id=webhook_delivery,
        shared_file_id=reply_files["shared"],
        personal_file_id=reply_files["personal"],
    )


def _forge(token: str, **claims: Any) -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _credentials(caller: str, world: World, tokens: TokenService, db) -> tuple[str, str] | None:
    """(token, csrf) of the caller's session, or None."""
    if caller == "anon":
        return None
    user = world.users[caller]
    issuer = tokens
    if caller == "expired":
        issuer = TokenService(
            tokens.secret_key,
            tokens.ttl,
            clock=lambda: datetime.now(UTC) - tokens.ttl - timedelta(minutes=1),
        )
    token, session = issuer.issue(user)
    if caller == "tampered":
        token = _forge(token, ver=user["token_version"] + 1)
    if caller == "inactive":
        with db.transaction() as conn:
            conn.execute("UPDATE users SET is_active = false WHERE id = %s", (user["id"],))
    return token, tokens.csrf_token(session)


def _blocked_sender(db) -> int:
    """A blocked sender, for the routes that remove one."""
    with db.transaction() as conn:
        return conn.execute(
            "INSERT INTO blocked_senders (pattern) VALUES ('@blocked.example') RETURNING id"
        ).fetchone()[0]


def _admin_token(db, world: World) -> int:
    """An API token of the `admin` caller, for the routes that revoke one."""
    with db.transaction() as conn:
        return conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) "
            "VALUES (%s, 'CI', sha256('x'), 'sd_pat_xxxx', now()) RETURNING id",
            (world.users["admin"]["id"],),
        ).fetchone()[0]


def _json_bodies(world: World) -> dict[str, Any]:
    return {
        "login": {"email": "login@example.com", "password": STAFF_PASSWORD},
        "login_code": {"challenge": "not.a.challenge", "code": "123456"},
        "two_factor_off": {"password": STAFF_PASSWORD, "code": "123456"},
        "new_user": _new_user(),
        "password": {"current_password": STAFF_PASSWORD, "new_password": "a brand new passphrase"},
        "new_ticket": _new_ticket(),
        "staff_email": _staff_email(),
        "assign": {"user_id": world.target_agent["id"]},
        "new_mailbox": _new_mailbox(),
        "new_webhook": _new_webhook(),
        "requester": {"requester_email": "kept@example.org"},
        "merge": {"into": world.open_ticket["pid"]},
        "participant": {"email": "eli@example.net", "name": "Eli"},
        "bulk": {
            "pids": [world.ticket["pid"], world.open_ticket["pid"]],
            "action": "priority",
            "value": "HIGH",
        },
        "bulk_assign": {
            "pids": [world.ticket["pid"]],
            "action": "assign",
            "value": world.target_agent["id"],
        },
        "saved_reply": {"title": "Thanks", "body": "Thanks, {{ customer.first_name }}!"},
        "shared_reply": {"title": "Thanks", "body": "Thanks!", "shared": True},
        "render": {"pid": world.ticket["pid"]},
        "reply_with_saved_file": {"body": "Attached.", "saved_reply_files": [world.shared_file_id]},
        "render_open": {"pid": world.open_ticket["pid"]},
        "reset": {"email": "login@example.com"},
        "reset_confirm": {"token": "1.2.x", "new_password": "a brand new passphrase"},
        "api_token": {"name": "CI"},
        "preferences": {
            "new_ticket": True,
            "customer_reply": True,
            "assigned": False,
            "mentioned": True,
        },
    }


def _form_fields(world: World) -> dict[str, Any]:
    """A page form's fields, without its CSRF token."""
    return {
        "new_user_form": _new_user(),
        "edit_form": {"name": "Renamed", "is_active": "on"},
        "new_ticket_form": _new_ticket(),
        "new_email_form": _staff_email(),
        "status_form": {"status": "WAITING", "priority": "HIGH"},
        "reply_form": {"body": "We are on it."},
        "password_form": {"current_password": STAFF_PASSWORD, "new_password": "a new passphrase!"},
        "assign_form": {"user_id": str(world.target_agent["id"])},
        "new_mailbox_form": _new_mailbox(),
        "new_webhook_form": {
            "url": "https://93.184.215.14/hook",
            "event:ticket.created": "on",
            "secret": "s" * 20,
        },
        "mailbox_form": {
            "address": "support@example.com",
            "imap_host": "127.0.0.1",
            "imap_port": "993",
            "is_active": "on",
        },
        "requester_form": {"requester_email": "kept@example.org"},
        "merge_form": {"into": world.open_ticket["pid"]},
        "participant_form": {"email": "eli@example.net", "name": ""},
        "uncopy_form": {"email": PARTICIPANT},
        "bulk_form": {"pids": world.ticket["pid"], "change": "priority:HIGH"},
        "block_form": {"pattern": "@spam.example"},
        "saved_reply_form": {"title": "Thanks", "body": "Thanks!"},
        "insert_form": {"saved_reply_id": str(world.shared_reply_id), "body": "Typed."},
        "follow_form": {"follow": "yes"},
        "preferences_form": {"new_ticket": "on", "mentioned": "on"},
        "reset_form": {"email": "login@example.com"},
        "reset_confirm_form": {"token": "1.2.x", "new_password": "a brand new passphrase"},
        "api_token_form": {"name": "CI", "lifetime": "30"},
        "erase_form": {"email": PARTICIPANT, "confirm": PARTICIPANT},
        "two_factor_code_form": {"code": "123456"},
        "two_factor_off_form": {"password": STAFF_PASSWORD, "code": "123456"},
    }


def _body(kind: Any, world: World, client: webtest.TestApp, csrf: str | None):
    if kind is None or isinstance(kind, dict) or kind == UPLOAD:
        return kind
    if kind in (bodies := _json_bodies(world)):
        return bodies[kind]
    if kind in ("login_form", "login_code_form"):
        page = webtest.TestApp(client.app).get("/login")  # a fresh browser gets the form
        client.set_cookie("login_csrf", page.form["login_csrf"].value)
        if kind == "login_code_form":
            return {
                "challenge": "not.a.challenge",
                "code": "123456",
                "login_csrf": page.form["login_csrf"].value,
            }
        return {
            "email": "login@example.com",
            "password": STAFF_PASSWORD,
            "login_csrf": page.form["login_csrf"].value,
            "next": "/users",
        }
    return {"csrf_token": csrf or ""} | _form_fields(world).get(kind, {})


@pytest.mark.parametrize(
    ("method", "path", "body", "caller", "agents_see_unassigned", "expected"), CASES
)
def test_access(
    matrix_settings,
    kept_world,
    wiper,
    tokens,
    session_db,
    method,
    path,
    body,
    caller,
    agents_see_unassigned,
    expected,
):
    world, db = kept_world, session_db
    current = matrix_settings.replace(agents_see_unassigned=agents_see_unassigned)
    client = webtest.TestApp(shared_app(current, db))
    credentials = _credentials(caller, world, tokens, db)
    is_page = not path.startswith(("/api/", "/healthz"))
    headers: dict[str, str] = {}
    csrf = None
    if credentials:
        token, csrf = credentials
        if is_page or caller == "nocsrf":
            client.set_cookie("session", token)
            if caller == "nocsrf":
                csrf = None
        else:
            headers["Authorization"] = f"Bearer {token}"
    if is_page:
        headers["Accept"] = "text/html"
    pid = world.ticket["pid"]
    confirmation = f"pid={pid}&sig={sign(tokens.secret_key, CONFIRMATION, pid)}"
    url = path.format(
        agent_id=world.target_agent["id"],
        pid=pid,
        open_pid=world.open_ticket["pid"],
        open_attachment_id=world.open_attachment_id,
        confirmation=confirmation,
        outbox_id=world.outbox_id,
        attachment_id=world.attachment_id,
        mailbox_id=world.mailbox_id,
        quarantine_id=world.quarantine_id,
        message_id=world.message_id,
        no_mailbox=999,
        participant=PARTICIPANT,
        blocked_id=_blocked_sender(db) if "{blocked_id}" in path else 0,
        shared_reply=world.shared_reply_id,
        personal_reply=world.personal_reply_id,
        shared_file=world.shared_file_id,
        personal_file=world.personal_file_id,
        admin_token=_admin_token(db, world) if "{admin_token}" in path else 0,
        webhook_id=world.webhook_id,
        webhook_delivery_id=world.webhook_delivery_id,
    )
    payload = _body(body, world, client, csrf)

    if method == "GET":
        resp = client.get(url, headers=headers, expect_errors=True)
    elif body == UPLOAD:
        resp = client.post(
            url,
            upload_files=[("attachments", "notes.txt", b"Notes, in plain text.\n")],
            headers=headers,
            expect_errors=True,
        )
    elif is_page:
        resp = client.post(url, payload or {}, headers=headers, expect_errors=True)
    else:
        resp = client.request(
            url,
            method=method,
            headers=headers,
            expect_errors=True,
            body=json.dumps(payload).encode() if payload is not None else b"",
            content_type="application/json" if payload is not None else None,
        )

    if expected == LOGIN:
        assert resp.status_int == 303, resp.text
        assert resp.headers["Location"].startswith("/login?next="), resp.headers["Location"]
    else:
        assert resp.status_int == expected, resp.text
        if expected == 303:
            assert "/login?next=" not in resp.headers["Location"]
    if resp.status_int >= 400 and not is_page:
        assert resp.json["error"]["request_id"] == resp.headers["X-Request-ID"]
    _keep(world, wiper, method, path, caller, expected)
