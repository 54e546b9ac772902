"""Every route in one table: path, resource, and for each method who may call it.

`create_app` registers these routes, the OpenAPI document is generated from them, and the
access guard (and its test, one row per route x role) reads the `who` of each operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Who may call an operation.
ANYONE = "anyone"


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

ROUTES: tuple[Route, ...] = (
    Route(
        "/healthz",
        "health",
        {
            "GET": Operation(
                ANYONE,
                "Health: 200 when PostgreSQL and Redis answer, else 503",
                responses={
                    "200": {
                        "description": "Both answer",
                        "content": {"application/json": {"schema": HEALTH_SCHEMA}},
                    },
                    "503": {"$ref": "#/components/responses/Error"},
                },
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
                responses={
                    "200": {
                        "description": "The document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            ),
        },
    ),
)
