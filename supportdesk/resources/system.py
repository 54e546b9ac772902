"""Operational routes: health and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import falcon

from supportdesk.errors import ServiceUnavailable
from supportdesk.health import HealthChecker


class HealthResource:
    def __init__(self, checker: HealthChecker):
        self.checker = checker

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        checks = self.checker.check()
        if not all(result == "ok" for result in checks.values()):
            raise ServiceUnavailable(details=checks)
        resp.media = {"status": "ok", "checks": checks}


class OpenAPIResource:
    def __init__(self, document: dict[str, Any]):
        self.document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.document
