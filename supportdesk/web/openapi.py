"""The OpenAPI 3.1 document, generated from the route table so that it cannot drift: each
request body and query string from the declaration its parser checks by (`core.fields`)."""

from __future__ import annotations

import re
from typing import Any

from supportdesk import __version__
from supportdesk.web.guards import ANYONE, ENROLLING, PROVIDER
from supportdesk.web.routes import Operation, Route
from supportdesk.web.schemas import request_body

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "request_id"],
            "properties": {
                "code": {"type": "string", "examples": ["validation_error"]},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
                "request_id": {"type": "string"},
            },
        }
    },
}


def build_openapi(routes: tuple[Route, ...], schemas: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        if not route.in_api_doc:
            continue
        item: dict[str, Any] = {}
        path_params = re.findall(r"{(\w+)(?::(\w+))?}", route.path)
        path = re.sub(r"{(\w+):\w+}", r"{\1}", route.path)
        for method, op in route.operations.items():
            responses = dict(op.responses) or {"200": {"description": "OK"}}
            for status in implied_errors(route.path, method, op):
                responses.setdefault(status, ERROR)
            responses = dict(sorted(responses.items()))
            responses.setdefault("default", ERROR)
            operation: dict[str, Any] = {
                "summary": op.summary,
                "operationId": _operation_id(method, path),
                "x-access": op.who,
                "responses": responses,
            }
            parameters = [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer" if converter == "int" else "string"},
                }
                for name, converter in path_params
            ]
            parameters += (op.query.parameters() if op.query else []) + list(op.parameters)
            if parameters:
                operation["parameters"] = parameters
            if op.body is not None:
                operation["requestBody"] = request_body(op.body, op.takes_files, op.other_bodies)
            elif op.request_body is not None:
                operation["requestBody"] = op.request_body
            if op.who != "anyone":
                operation["security"] = [{"bearer": []}, {"cookie": []}]
            item[method.lower()] = operation
        paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Support Desk API",
            "version": __version__,
            "description": "Email-first help desk. Every error is the envelope in "
            "components/schemas/Error; every response carries X-Request-ID.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA, **schemas, **declared_bodies(routes)},
            "responses": {
                "Error": {
                    "description": "An error, in the envelope",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the session token of POST /api/auth/login (a JWT), or a "
                    "personal API token (`sd_pat_...`, POST /api/me/tokens)",
                },
                "cookie": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


ERROR = {"$ref": "#/components/responses/Error"}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def implied_errors(path: str, method: str, op: Operation) -> list[str]:
    """The errors an operation can answer because of what the route table says of it, so
    that each one is listed by number (not left to `default`)."""
    errors = []
    if op.who not in (ANYONE, PROVIDER):
        errors.append("401")  # no session, or a stale one
    if op.who not in (ANYONE, PROVIDER, ENROLLING) or (method in UNSAFE and op.who == ENROLLING):
        # the role, a cookie without its CSRF token, or two-factor to set up first
        # (REQUIRE_2FA_FOR: guards.ENROLLING)
        errors.append("403")
    if "{" in path:
        errors.append("404")  # no such thing, or not for this caller
    if op.body is not None or op.request_body is not None:
        # unreadable, of unannounced length, too large, of another type, not acceptable
        errors += ["400", "411", "413", "415", "422"]
    return errors


def declared_bodies(routes: tuple[Route, ...]) -> dict[str, Any]:
    """The JSON Schema of each declared request body, by name, for components/schemas."""
    return {
        body.name: body.json_schema()
        for route in routes
        if route.in_api_doc
        for op in route.operations.values()
        if op.body is not None
        for body in (op.body, *op.other_bodies)
    }


def _operation_id(method: str, path: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path.replace("{", "by_")) if w and w != "api"]
    return method.lower() + "_" + "_".join(words)
