"""Every route in one table: path, resource, and for each method who may call it.

`create_app` registers these routes, the OpenAPI document is generated from them, and the
access guard (and its test, one row per route x role) reads the `who` of each operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supportdesk.auth import ANYONE, MANAGERS, STAFF
from supportdesk.tickets import PRIORITIES, STATUSES, TOTAL_CAP
from supportdesk.timeline import EVENT_TYPES


@dataclass(frozen=True)
class Operation:
    who: str
    summary: str
    responses: dict[str, Any] = field(default_factory=dict)
    request_body: dict[str, Any] | None = None
    parameters: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Route:
    path: str
    resource: str  # the key of the resource object built by create_app
    operations: dict[str, Operation]
    in_api_doc: bool = True


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR = {"$ref": "#/components/responses/Error"}

HEALTH_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok"]},
        "checks": {
            "type": "object",
            "properties": {"postgres": {"type": "string"}, "redis": {"type": "string"}},
        },
    },
}

# Schemas referenced by the operations, published under components/schemas.
SCHEMAS: dict[str, dict[str, Any]] = {
    "User": {
        "type": "object",
        "required": ["id", "email", "name", "role", "is_active", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string", "format": "email"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["ADMIN", "SUB_ADMIN", "AGENT"]},
            "is_active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "Login": {
        "type": "object",
        "required": ["email", "password"],
        "properties": {"email": {"type": "string"}, "password": {"type": "string"}},
    },
    "Session": {
        "type": "object",
        "required": ["token", "token_type", "expires_at", "csrf_token", "user"],
        "properties": {
            "token": {"type": "string", "description": "send as `Authorization: Bearer`"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_at": {"type": "string", "format": "date-time"},
            "csrf_token": {
                "type": "string",
                "description": "send as X-CSRF-Token with cookie-authenticated writes",
            },
            "user": ref("User"),
        },
    },
    "NewUser": {
        "type": "object",
        "required": ["email", "name", "role", "password"],
        "additionalProperties": False,
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "role": {"type": "string", "enum": ["ADMIN", "SUB_ADMIN", "AGENT"]},
            "password": {
                "type": "string",
                "minLength": 10,
                "description": "10+ characters, at most 72 bytes in UTF-8",
            },
        },
    },
    "UserChange": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "role": {"type": "string", "enum": ["ADMIN", "SUB_ADMIN", "AGENT"]},
            "is_active": {"type": "boolean"},
            "password": {"type": "string", "minLength": 10},
        },
    },
}

SCHEMAS.update(
    {
        "Person": {
            "type": "object",
            "required": ["id", "name"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        },
        "Ticket": {
            "type": "object",
            "required": [
                "pid",
                "subject",
                "status",
                "priority",
                "requester",
                "assigned_to",
                "created_at",
                "updated_at",
            ],
            "properties": {
                "pid": {
                    "type": "string",
                    "pattern": "^[0-9]{6}-[0-9]{5,}$",
                    "examples": ["202611-00042"],
                },
                "subject": {"type": "string"},
                "status": {"type": "string", "enum": list(STATUSES)},
                "priority": {"type": "string", "enum": list(PRIORITIES)},
                "requester": {
                    "type": "object",
                    "required": ["email", "name"],
                    "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
                },
                "assigned_to": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["id", "name", "email"],
                            "properties": {
                                "id": {"type": "integer"},
                                "name": {"type": "string"},
                                "email": {"type": "string"},
                            },
                        },
                    ],
                },
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
        },
        "NewTicket": {
            "type": "object",
            "required": ["name", "email", "subject", "body"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "subject": {"type": "string", "minLength": 1, "maxLength": 255},
                "body": {"type": "string", "minLength": 1, "maxLength": 50000},
                "priority": {"type": "string", "enum": list(PRIORITIES), "default": "NORMAL"},
            },
        },
        "TicketChange": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "status": {"type": "string", "enum": list(STATUSES)},
                "priority": {"type": "string", "enum": list(PRIORITIES)},
            },
        },
        "Assignment": {
            "type": "object",
            "required": ["user_id"],
            "additionalProperties": False,
            "properties": {
                "user_id": {
                    "type": ["integer", "null"],
                    "description": "an active staff user, or null to unassign",
                }
            },
        },
        "Event": {
            "type": "object",
            "required": ["id", "type", "actor", "data", "summary", "created_at"],
            "properties": {
                "id": {"type": "integer"},
                "type": {
                    "type": "string",
                    "enum": list(EVENT_TYPES),
                },
                "actor": {"oneOf": [{"type": "null"}, ref("Person")]},
                "data": {
                    "type": "object",
                    "description": "ASSIGNED: {from, to} people; STATUS_CHANGED and "
                    "PRIORITY_CHANGED: {from, to} values; UNASSIGNED: {from}",
                },
                "summary": {"type": "string", "examples": ["Ana assigned this to Bo"]},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    }
)

TICKET_ENVELOPE = {
    "type": "object",
    "required": ["ticket"],
    "properties": {"ticket": ref("Ticket")},
}


def query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


LIST_PARAMETERS = (
    query_param("status", "one status", {"type": "string", "enum": list(STATUSES)}),
    query_param("priority", "one priority", {"type": "string", "enum": list(PRIORITIES)}),
    query_param("assigned_to", "a staff user id, `me` or `none`", {"type": "string"}),
    query_param(
        "q",
        "case-insensitive substring of subject, requester name or email (3-200 characters)",
        {"type": "string", "minLength": 3, "maxLength": 200},
    ),
    query_param("page", "from 1", {"type": "integer", "minimum": 1, "default": 1}),
    query_param(
        "per_page", "1-100", {"type": "integer", "minimum": 1, "maximum": 100, "default": 25}
    ),
)

USER_ENVELOPE = {"type": "object", "required": ["user"], "properties": {"user": ref("User")}}

ROUTES: tuple[Route, ...] = (
    Route(
        "/healthz",
        "health",
        {
            "GET": Operation(
                ANYONE,
                "Health: 200 when PostgreSQL and Redis answer, else 503",
                responses={"200": json_response("Both answer", HEALTH_SCHEMA), "503": ERROR},
            ),
        },
    ),
    Route(
        "/api/openapi.json",
        "openapi",
        {
            "GET": Operation(
                ANYONE,
                "This OpenAPI 3.1 document",
                responses={"200": json_response("The document", {"type": "object"})},
            ),
        },
    ),
    Route(
        "/api/auth/login",
        "login",
        {
            "POST": Operation(
                ANYONE,
                "Log in: a token for API clients and the session cookie for browsers; 401 "
                "alike for unknown email, wrong password and deactivated user; 429 after "
                "repeated failures",
                request_body=json_body(ref("Login")),
                responses={
                    "200": json_response("Logged in", ref("Session")),
                    "401": ERROR,
                    "422": ERROR,
                    "429": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/auth/logout",
        "logout",
        {
            "POST": Operation(
                STAFF,
                "Log out: this token stops working and the cookie is cleared",
                responses={"204": {"description": "Logged out"}, "401": ERROR},
            ),
        },
    ),
    Route(
        "/api/auth/me",
        "me",
        {
            "GET": Operation(
                STAFF,
                "The current user, and the CSRF token of this session",
                responses={
                    "200": json_response(
                        "The current user",
                        {
                            "type": "object",
                            "required": ["user", "csrf_token"],
                            "properties": {"user": ref("User"), "csrf_token": {"type": "string"}},
                        },
                    ),
                    "401": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/users",
        "users",
        {
            "GET": Operation(
                MANAGERS,
                "The staff list (ADMIN, SUB_ADMIN)",
                responses={
                    "200": json_response(
                        "Every staff account",
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": ref("User")}},
                        },
                    ),
                    "401": ERROR,
                    "403": ERROR,
                },
            ),
            "POST": Operation(
                MANAGERS,
                "Add a staff member (ADMIN: any role; SUB_ADMIN: AGENT only)",
                request_body=json_body(ref("NewUser")),
                responses={
                    "201": json_response("Created", USER_ENVELOPE),
                    "403": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/users/{user_id:int}",
        "user",
        {
            "PATCH": Operation(
                MANAGERS,
                "Change a staff member (ADMIN: anyone; SUB_ADMIN: AGENTs; only ADMIN changes "
                "roles; nobody deactivates or demotes the last active ADMIN, nor themselves)",
                request_body=json_body(ref("UserChange")),
                responses={
                    "200": json_response("Changed", USER_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets",
        "tickets",
        {
            "POST": Operation(
                ANYONE,
                "Open a ticket (public; staff with a token open it on the customer's behalf). "
                "The customer is emailed an acknowledgement with the ticket number.",
                request_body=json_body(ref("NewTicket")),
                responses={
                    "201": json_response("Opened", TICKET_ENVELOPE),
                    "400": ERROR,
                    "422": ERROR,
                },
            ),
            "GET": Operation(
                STAFF,
                "The tickets the caller may see, newest first (an AGENT sees its own). `total` "
                f"is exact up to {TOTAL_CAP:,} matches; past that it is {TOTAL_CAP:,} and "
                "`total_capped` is true.",
                parameters=LIST_PARAMETERS,
                responses={
                    "200": json_response(
                        "One page",
                        {
                            "type": "object",
                            "required": ["items", "page", "per_page", "total", "total_capped"],
                            "properties": {
                                "items": {"type": "array", "items": ref("Ticket")},
                                "page": {"type": "integer"},
                                "per_page": {"type": "integer"},
                                "total": {"type": "integer"},
                                "total_capped": {"type": "boolean"},
                            },
                        },
                    ),
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}",
        "ticket",
        {
            "GET": Operation(
                STAFF,
                "One ticket (404 when the caller may not see it)",
                responses={"200": json_response("The ticket", TICKET_ENVELOPE), "404": ERROR},
            ),
            "PATCH": Operation(
                STAFF,
                "Change status and/or priority; each change is a timeline event",
                request_body=json_body(ref("TicketChange")),
                responses={
                    "200": json_response("Changed", TICKET_ENVELOPE),
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/assign",
        "ticket_assign",
        {
            "POST": Operation(
                MANAGERS,
                "Assign to an active staff member, or unassign with null; the new "
                "assignee is emailed a notice",
                request_body=json_body(ref("Assignment")),
                responses={
                    "200": json_response("Assigned", TICKET_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/events",
        "ticket_events",
        {
            "GET": Operation(
                STAFF,
                "The timeline, oldest first",
                responses={
                    "200": json_response(
                        "Every event",
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": ref("Event")}},
                        },
                    ),
                    "404": ERROR,
                },
            ),
        },
    ),
    # --- pages (server-rendered HTML; not part of the API document) ---
    Route(
        "/",
        "public_form",
        {
            "GET": Operation(ANYONE, "The public form to open a ticket"),
            "POST": Operation(ANYONE, "Open a ticket from the form"),
        },
        in_api_doc=False,
    ),
    Route(
        "/submitted",
        "submitted_page",
        {
            "GET": Operation(ANYONE, "The confirmation with the ticket number"),
        },
        in_api_doc=False,
    ),
    Route(
        "/tickets",
        "tickets_page",
        {
            "GET": Operation(STAFF, "The ticket list"),
        },
        in_api_doc=False,
    ),
    Route(
        "/tickets/{pid}",
        "ticket_page",
        {
            "GET": Operation(STAFF, "One ticket"),
            "POST": Operation(STAFF, "Change status or priority from the page"),
        },
        in_api_doc=False,
    ),
    Route(
        "/tickets/{pid}/assign",
        "ticket_assign_page",
        {
            "POST": Operation(MANAGERS, "The assignment dialog's form"),
        },
        in_api_doc=False,
    ),
    Route(
        "/login",
        "login_page",
        {
            "GET": Operation(ANYONE, "The login form"),
            "POST": Operation(ANYONE, "Log in from the form"),
        },
        in_api_doc=False,
    ),
    Route(
        "/logout",
        "logout_page",
        {
            "POST": Operation(STAFF, "Log out from the page"),
        },
        in_api_doc=False,
    ),
    Route(
        "/users",
        "users_page",
        {
            "GET": Operation(MANAGERS, "The staff page"),
            "POST": Operation(MANAGERS, "Add a staff member from the page"),
        },
        in_api_doc=False,
    ),
    Route(
        "/users/{user_id:int}",
        "user_page",
        {
            "GET": Operation(MANAGERS, "Edit a staff member"),
            "POST": Operation(MANAGERS, "Save a staff member"),
        },
        in_api_doc=False,
    ),
)


def access_table(routes: tuple[Route, ...] = ROUTES) -> dict[tuple[str, str], str]:
    """(URI template, method) -> who may call it: what the auth middleware enforces."""
    return {(r.path, m): op.who for r in routes for m, op in r.operations.items()}
