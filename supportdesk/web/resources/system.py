"""Operational routes: health and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import falcon

from supportdesk.core.errors import ServiceUnavailable
from supportdesk.web.health import HealthChecker
from supportdesk.web.openapi import build_openapi
from supportdesk.web.routes import ROUTES
from supportdesk.web.schemas import SCHEMAS

if TYPE_CHECKING:
    from supportdesk.web.services import Services


class HealthResource:
    def __init__(self, checker: HealthChecker):
        self.checker = checker

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = self.checker.check()
        if not all(result == "ok" for result in checks.values()):
            raise ServiceUnavailable(details=checks)
        resp.media = {
            "status": "ok",
            "checks": checks,
            "email": self.checker.email(),
            "mailboxes": self.checker.mailboxes(),
        }


class OpenAPIResource:
    def __init__(self, document: dict[str, Any]):
        self.document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document


def build(services: Services) -> dict[str, object]:
    return {
        "health": HealthResource(services.health),
        "openapi": OpenAPIResource(build_openapi(ROUTES, SCHEMAS)),
    }
