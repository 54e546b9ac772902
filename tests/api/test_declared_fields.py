"""What the OpenAPI document says of a request field is what its check enforces (issue 19).

For every operation that takes a JSON body or a query string, each published `maxLength`,
`minLength`, `minimum`, `maximum`, `enum` and `required`, and a closed body's refusal of
other fields, is tried on both sides of its line: the value at the limit is accepted, the
one past it is a 422 naming the field. The facts are read from the document as it is served,
so a limit changed in the declaration and not in the check (or the reverse) fails here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from supportdesk.web.openapi import build_openapi
from supportdesk.web.routes import ROUTES
from supportdesk.web.schemas import SCHEMAS
from tests.conftest import STAFF_PASSWORD
from tests.factories import make_quarantined, make_ticket
from tests.webhook import signed

# What /api/openapi.json serves (test_the_facts_are_read_from_the_served_document).
DOCUMENT = json.loads(json.dumps(build_openapi(ROUTES, SCHEMAS)))
FACTS = ("maxLength", "minLength", "minimum", "maximum")
_unique = itertools.count(1)


@dataclass
class World:
    admin: dict[str, Any]
    make_staff: Callable[..., dict[str, Any]]
    bearer: Callable[[dict[str, Any]], dict[str, str]]
    db: Any
    secret_key: str = ""

    def as_admin(self) -> dict[str, str]:
        return self.bearer(self.admin)

    def as_new_agent(self) -> dict[str, str]:
        return self.bearer(self.make_staff("AGENT"))

    def ticket(self) -> str:
        with self.db.transaction() as conn:
            return make_ticket(conn)["pid"]

    def quarantined(self) -> int:
        with self.db.transaction() as conn:
            return make_quarantined(conn)["id"]

    def agent(self) -> int:
        return self.make_staff("AGENT")["id"]

    def mailbox(self) -> int:
        with self.db.transaction() as conn:
            return conn.execute(
                "INSERT INTO mailboxes (address, imap_host, imap_port, username, "
                "secret_encrypted) VALUES (%s, 'imap.example.com', 993, 'support', 'sealed') "
                "RETURNING id",
                (f"support{next(_unique)}@example.com",),
            ).fetchone()[0]

    def saved_reply(self) -> int:
        """A shared saved reply (ADMIN may change it)."""
        with self.db.transaction() as conn:
            return conn.execute(
                "INSERT INTO saved_replies (title, body, owner_id, created_by) "
                "VALUES ('Thanks', 'Thanks!', NULL, %s) RETURNING id",
                (self.admin["id"],),
            ).fetchone()[0]

    def reset_token(self) -> str:
        """The token of a fresh password-reset link of a new colleague."""
        from supportdesk.accounts.password_resets import PasswordResets

        user = self.make_staff("AGENT")
        with self.db.transaction() as conn:
            reset_id, expires_at = conn.execute(
                "INSERT INTO password_resets (user_id, token_version, created_at, expires_at) "
                "VALUES (%s, %s, now(), now() + interval '30 minutes') RETURNING id, expires_at",
                (user["id"], user["token_version"]),
            ).fetchone()
        return PasswordResets(self.db, None, None, self.secret_key, 4).token(reset_id, expires_at)

    def webhook(self) -> int:
        with self.db.transaction() as conn:
            return conn.execute(
                "INSERT INTO webhooks (url, events, secret_encrypted) "
                "VALUES ('https://93.184.215.14/hook', '{ticket.created}', 'sealed') RETURNING id"
            ).fetchone()[0]

    def login_email(self) -> str:
        return self.make_staff("AGENT", email=f"login{next(_unique)}@example.com")["email"]


@dataclass(frozen=True)
class Case:
    """How to call an operation so that it succeeds: each call on things of its own (a new
    ticket, a new colleague), so that one try cannot change what the next one meets."""

    url: Callable[[World], str]
    headers: Callable[[World], dict[str, str]]
    body: Callable[[World], dict[str, Any]] = lambda w: {}


def _new_ticket(w: World) -> dict[str, Any]:
    n = next(_unique)
    return {"name": "Cleo", "email": f"cleo{n}@example.org", "subject": "Jam", "body": "Tray 2."}


def _staff_email(w: World) -> dict[str, Any]:
    return {"to": f"cleo{next(_unique)}@example.org", "subject": "Hi", "body": "Hello."}


CASES: dict[str, Case] = {
    "POST /api/auth/login": Case(
        lambda w: "/api/auth/login",
        lambda w: {},
        lambda w: {"email": w.login_email(), "password": STAFF_PASSWORD},
    ),
    # Two-factor (section 13): only the required fields and the closed bodies are published.
    "POST /api/auth/login/2fa": Case(
        lambda w: "/api/auth/login/2fa",
        lambda w: {},
        lambda w: {"challenge": "not.a.challenge", "code": "123456"},
    ),
    "POST /api/me/2fa/confirm": Case(
        lambda w: "/api/me/2fa/confirm", World.as_new_agent, lambda w: {"code": "123456"}
    ),
    "DELETE /api/me/2fa": Case(
        lambda w: "/api/me/2fa",
        World.as_new_agent,
        lambda w: {"password": STAFF_PASSWORD, "code": "123456"},
    ),
    "POST /api/auth/password": Case(
        lambda w: "/api/auth/password",
        World.as_new_agent,
        lambda w: {"current_password": STAFF_PASSWORD, "new_password": "a brand new passphrase"},
    ),
    "POST /api/auth/password-reset": Case(
        lambda w: "/api/auth/password-reset",
        lambda w: {},
        lambda w: {"email": f"someone{next(_unique)}@example.com"},
    ),
    "POST /api/auth/password-reset/confirm": Case(
        lambda w: "/api/auth/password-reset/confirm",
        lambda w: {},
        lambda w: {"token": w.reset_token(), "new_password": "a brand new passphrase"},
    ),
    "POST /api/me/tokens": Case(
        lambda w: "/api/me/tokens", World.as_new_agent, lambda w: {"name": "CI"}
    ),
    "POST /api/users": Case(
        lambda w: "/api/users",
        World.as_admin,
        lambda w: {
            "email": f"fresh{next(_unique)}@example.com",
            "name": "Fresh",
            "role": "AGENT",
            "password": "long enough pw",
        },
    ),
    "PATCH /api/users/{user_id}": Case(
        lambda w: f"/api/users/{w.agent()}", World.as_admin, lambda w: {"name": "Renamed"}
    ),
    "POST /api/tickets NewTicket": Case(lambda w: "/api/tickets", lambda w: {}, _new_ticket),
    "POST /api/tickets StaffEmail": Case(lambda w: "/api/tickets", World.as_admin, _staff_email),
    "GET /api/tickets": Case(lambda w: "/api/tickets", World.as_admin),
    "PATCH /api/tickets/{pid}": Case(
        lambda w: f"/api/tickets/{w.ticket()}", World.as_admin, lambda w: {"priority": "HIGH"}
    ),
    "POST /api/tickets/{pid}/assign": Case(
        lambda w: f"/api/tickets/{w.ticket()}/assign",
        World.as_admin,
        lambda w: {"user_id": w.agent()},
    ),
    "POST /api/tickets/{pid}/merge": Case(
        lambda w: f"/api/tickets/{w.ticket()}/merge", World.as_admin, lambda w: {"into": w.ticket()}
    ),
    "POST /api/tickets/{pid}/messages": Case(
        lambda w: f"/api/tickets/{w.ticket()}/messages", World.as_admin, lambda w: {"body": "Hi"}
    ),
    "POST /api/tickets/{pid}/participants": Case(
        lambda w: f"/api/tickets/{w.ticket()}/participants",
        World.as_admin,
        lambda w: {"email": f"dana{next(_unique)}@example.org", "name": "Dana"},
    ),
    "POST /api/inbound/email": Case(
        lambda w: "/api/inbound/email",
        lambda w: {},  # signed per body
        lambda w: {
            "from": "Cleo <cleo@example.org>",
            "to": "support@example.com",
            "subject": "Hello",
            "text": "A question.",
            "message_id": f"<m{next(_unique)}@example.org>",
        },
    ),
    "GET /api/outbox": Case(lambda w: "/api/outbox", World.as_admin),
    "GET /api/audit": Case(lambda w: "/api/audit", World.as_admin),
    "PUT /api/me/notifications": Case(
        lambda w: "/api/me/notifications",
        World.as_new_agent,
        lambda w: {
            "new_ticket": True,
            "customer_reply": True,
            "assigned": False,
            "mentioned": True,
        },
    ),
    "POST /api/mailboxes": Case(
        lambda w: "/api/mailboxes",
        World.as_admin,
        lambda w: {
            "address": f"support{next(_unique)}@example.com",
            "imap_host": "imap.example.com",
            "password": "imap password",
            "oauth_provider": "CUSTOM",  # kept for OAUTH2 only
            "smtp_host": "smtp.example.com",
        },
    ),
    "PATCH /api/mailboxes/{mailbox_id}": Case(
        lambda w: f"/api/mailboxes/{w.mailbox()}",
        World.as_admin,
        lambda w: {"display_name": "Help", "oauth_provider": "CUSTOM"},
    ),
    **{
        f"POST /api/tickets/bulk {name}": Case(
            lambda w: "/api/tickets/bulk",
            World.as_admin,
            lambda w, body=body: {"pids": [w.ticket()], **body},
        )
        for name, body in (
            ("BulkStatus", {"action": "status", "value": "CLOSED"}),
            ("BulkPriority", {"action": "priority", "value": "HIGH"}),
            ("BulkAssign", {"action": "assign", "value": None}),
            ("BulkSpam", {"action": "spam"}),
        )
    },
    "POST /api/blocked-senders": Case(
        lambda w: "/api/blocked-senders",
        World.as_admin,
        lambda w: {"pattern": f"@spam{next(_unique)}.example"},
    ),
    "GET /api/quarantine": Case(lambda w: "/api/quarantine", World.as_admin),
    "POST /api/webhooks": Case(
        lambda w: "/api/webhooks",
        World.as_admin,
        lambda w: {
            "url": "https://93.184.215.14/hook",
            "events": ["ticket.created"],
            "secret": "s" * 20,
        },
    ),
    "PATCH /api/webhooks/{webhook_id}": Case(
        lambda w: f"/api/webhooks/{w.webhook()}", World.as_admin, lambda w: {"active": False}
    ),
    "GET /api/webhooks/{webhook_id}/deliveries": Case(
        lambda w: f"/api/webhooks/{w.webhook()}/deliveries", World.as_admin
    ),
    "POST /api/quarantine/{quarantine_id}/ticket": Case(
        lambda w: f"/api/quarantine/{w.quarantined()}/ticket",
        World.as_admin,
        lambda w: {"requester_email": f"kept{next(_unique)}@example.org"},
    ),
    "POST /api/saved-replies": Case(
        lambda w: "/api/saved-replies",
        World.as_admin,
        lambda w: {"title": "Thanks", "body": "Thanks!", "shared": True},
    ),
    "PATCH /api/saved-replies/{reply_id}": Case(
        lambda w: f"/api/saved-replies/{w.saved_reply()}",
        World.as_admin,
        lambda w: {"title": "Thanks again"},
    ),
    "POST /api/saved-replies/{reply_id}/render": Case(
        lambda w: f"/api/saved-replies/{w.saved_reply()}/render",
        World.as_admin,
        lambda w: {"pid": w.ticket()},
    ),
}

# A value at a published limit that a rule across fields still refuses, with what it says.
REFUSED_AT_THE_LIMIT = {
    ("GET /api/tickets", "page", "maximum"): "That page is too deep",
    ("GET /api/outbox", "page", "maximum"): "That page is too deep",
    ("GET /api/quarantine", "page", "maximum"): "That page is too deep",
    ("GET /api/webhooks/{webhook_id}/deliveries", "page", "maximum"): "That page is too deep",
    # x's are not an address: the length is right, the shape is not.
    ("POST /api/blocked-senders", "pattern", "maxLength"): "Enter an email address",
    ("POST /api/blocked-senders", "pattern", "minLength"): "Enter an email address",
    # x's are not a link that we signed.
    ("POST /api/auth/password-reset/confirm", "token", "maxLength"): "This link is not valid",
}


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _facts() -> Iterator[tuple[str, str, str, str, Any]]:
    """(operation, "body" or "query", field, fact, its value) for each published fact."""
    for path, item in DOCUMENT["paths"].items():
        for method, op in item.items():
            operation = f"{method.upper()} {path}"
            fields: list[tuple[str, str, dict[str, Any]]] = [
                ("query", p["name"], p["schema"])
                for p in op.get("parameters", ())
                if p["in"] == "query"
            ]
            yield from _field_facts(operation, fields)
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            published = content["application/json"]["schema"]
            # One of several bodies (POST /api/tickets): each is an operation of its own here,
            # named by its schema, with a case that sends it.
            alternatives = published.get("oneOf", [published])
            for alternative in alternatives:
                name = alternative["$ref"].rsplit("/", 1)[1] if len(alternatives) > 1 else ""
                yield from _body_facts(f"{operation} {name}".strip(), _schema(alternative))


def _body_facts(operation: str, body: dict[str, Any]) -> Iterator[tuple[str, str, str, str, Any]]:
    for name in body.get("required", ()):
        yield operation, "body", name, "required", True
    if body.get("additionalProperties") is False:
        yield operation, "body", "not_a_field", "additionalProperties", False
    if body.get("minProperties"):
        yield operation, "body", "", "minProperties", body["minProperties"]
    yield from _field_facts(operation, [("body", n, s) for n, s in body["properties"].items()])


def _field_facts(
    operation: str, fields: list[tuple[str, str, dict[str, Any]]]
) -> Iterator[tuple[str, str, str, str, Any]]:
    for where, name, schema in fields:
        for fact in FACTS:
            if fact in schema:
                yield operation, where, name, fact, schema[fact]
        if "enum" in schema:
            yield operation, where, name, "enum", schema["enum"]


ALL_FACTS = list(_facts())


def _sized(field: str, length: int) -> str:
    """A value of `field` exactly `length` characters long, acceptable but for its length."""
    # A mailbox's address and the list's requester= filter are email addresses.
    if "email" in field or field in ("address", "requester"):
        return "a" * (length - len("@example.com")) + "@example.com"
    if field == "url":  # a webhook's: a public address as a literal, then a long path
        return ("https://93.184.215.14/" + "x" * length)[:length]
    if "password" in field:
        return ("Zq8#vW3!kP-" * (length // 11 + 1))[:length]
    return "x" * length


def _tries(field: str, fact: str, limit: Any) -> Iterator[tuple[Any, bool]]:
    """(a value for the field, whether the check must refuse it)."""
    if fact == "maxLength":
        yield _sized(field, limit), False
        yield _sized(field, limit + 1), True
    elif fact == "minLength":
        yield _sized(field, limit), False
        yield _sized(field, limit - 1), True
    elif fact == "minimum":
        yield limit, False
        yield limit - 1, True
    elif fact == "maximum":
        yield limit, False
        yield limit + 1, True
    elif fact == "enum":
        yield from ((value, False) for value in limit)
        yield "NOT_ONE_OF_THEM", True


def _call(api, world: World, operation: str, where: str, change: Callable[[dict], dict]):
    method, _ = operation.split(" ", 1)
    case = CASES[operation]
    url, headers = case.url(world), case.headers(world)
    if where == "query":
        query = {k: "" if v is None else v for k, v in change({}).items()}
        return api.request(
            f"{url}?{urlencode(query)}", method=method, headers=headers, expect_errors=True
        )
    raw = json.dumps(change(case.body(world))).encode()
    if operation == "POST /api/inbound/email":
        headers = signed(raw)
    return api.request(
        url,
        method=method,
        body=raw,
        content_type="application/json",
        headers=headers,
        expect_errors=True,
    )


@pytest.fixture
def world(make_staff, bearer, db, settings) -> World:
    return World(make_staff("ADMIN"), make_staff, bearer, db, settings.secret_key)


@pytest.mark.parametrize(
    ("operation", "where", "field", "fact", "limit"),
    ALL_FACTS,
    ids=[f"{o} {w}.{f or '*'} {fact}" for o, w, f, fact, _ in ALL_FACTS],
)
def test_a_published_fact_is_what_the_check_enforces(
    api, world, operation, where, field, fact, limit
):
    if fact == "required":
        tries = [(lambda body: {k: v for k, v in body.items() if k != field}, True)]
    elif fact == "additionalProperties":
        tries = [(lambda body: body | {field: "x"}, True)]
    elif fact == "minProperties":
        tries = [(lambda body: {}, True)]
    else:
        tries = [
            (lambda body, value=value: body | {field: value}, refused)
            for value, refused in _tries(field, fact, limit)
        ]
    for change, refused in tries:
        resp = _call(api, world, operation, where, change)
        if refused:
            assert resp.status_int == 422, resp.text
            details = resp.json["error"]["details"]
            assert field in details if field else details, details
        elif (operation, field, fact) in REFUSED_AT_THE_LIMIT:
            message = REFUSED_AT_THE_LIMIT[operation, field, fact]
            assert message in resp.json["error"]["details"][field]
        else:
            assert resp.status_int < 400, resp.text


def test_every_operation_with_published_facts_has_a_case():
    assert {operation for operation, *_ in ALL_FACTS} == set(CASES)


def test_the_facts_are_read_from_the_served_document(api):
    assert api.get("/api/openapi.json").json == DOCUMENT
