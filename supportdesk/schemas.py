"""The JSON Schemas of the API: request bodies, responses and the list's parameters.

`supportdesk/routes.py` refers to them per operation; the OpenAPI document publishes them
under components/schemas. The enums come from `supportdesk.vocabulary`, so the document
cannot offer a value the database refuses.
"""

from __future__ import annotations

from typing import Any

from supportdesk.vocabulary import EVENT_TYPES, PRIORITIES, ROLES, STATUSES


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
            "role": {"type": "string", "enum": list(ROLES)},
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
            "role": {"type": "string", "enum": list(ROLES)},
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
            "role": {"type": "string", "enum": list(ROLES)},
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
