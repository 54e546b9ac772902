"""create_app(settings) -> falcon.App: the one place that builds the application."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import falcon
import redis

from supportdesk.config import ConfigError, Settings
from supportdesk.db import Database
from supportdesk.errors import ErrorRenderer, register_error_handlers
from supportdesk.health import HealthChecker
from supportdesk.openapi import build_openapi
from supportdesk.resources.system import HealthResource, OpenAPIResource
from supportdesk.routes import ROUTES
from supportdesk.templating import make_templates

log = logging.getLogger("supportdesk.app")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Every request gets an id (the caller's X-Request-ID when it is sane), echoed back."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        incoming = req.get_header("X-Request-ID") or ""
        req.context.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        request_id = getattr(req.context, "request_id", None) or uuid.uuid4().hex
        resp.set_header("X-Request-ID", request_id)


def make_redis(settings: Settings) -> redis.Redis:
    if not settings.redis_url:
        raise ConfigError({"REDIS_URL": "is required (or run `supportdesk dev`)"})
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    redis_client: redis.Redis | None = None,
) -> falcon.App:
    settings = settings or Settings.from_env()
    db = db or Database(settings).open()
    redis_client = redis_client or make_redis(settings)
    templates = make_templates()

    app = falcon.App(middleware=[RequestIdMiddleware()])
    app.req_options.strip_url_path_trailing_slash = True
    register_error_handlers(app, ErrorRenderer(templates))

    resources: dict[str, object] = {
        "health": HealthResource(HealthChecker(db, redis_client)),
        "openapi": OpenAPIResource(build_openapi(ROUTES)),
    }
    for route in ROUTES:
        app.add_route(route.path, resources[route.resource])
    return app
