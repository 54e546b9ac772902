"""create_app(settings) -> falcon.App: the one place that builds the application."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import falcon
import redis

from supportdesk.auth import AuthMiddleware, TokenService
from supportdesk.config import PROJECT_ROOT, ConfigError, Settings
from supportdesk.db import Database
from supportdesk.emails import EmailComposer
from supportdesk.errors import ErrorRenderer, PayloadTooLarge, register_error_handlers
from supportdesk.health import HealthChecker
from supportdesk.openapi import build_openapi
from supportdesk.ratelimit import LoginThrottle, PublicTicketThrottle
from supportdesk.resources.auth import (
    LoginPage,
    LoginResource,
    LogoutPage,
    LogoutResource,
    MeResource,
)
from supportdesk.resources.common import Pages
from supportdesk.resources.system import HealthResource, OpenAPIResource
from supportdesk.resources.tickets import (
    PublicFormPage,
    SubmittedPage,
    TicketAssignPage,
    TicketAssignResource,
    TicketEventsResource,
    TicketPage,
    TicketResource,
    TicketsPage,
    TicketsResource,
)
from supportdesk.resources.users import UserPage, UserResource, UsersPage, UsersResource
from supportdesk.routes import ROUTES, SCHEMAS, access_table
from supportdesk.templating import make_templates
from supportdesk.tickets import TicketService
from supportdesk.users import AccountService

log = logging.getLogger("supportdesk.app")

STATIC_DIR = PROJECT_ROOT / "static"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestSizeLimit:
    """Refuse a body larger than any request of this app may be (all of a message's files
    and the form around them), before anything reads it."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self.max_bytes:
            raise PayloadTooLarge(f"The request is larger than {self.max_bytes:,} bytes.")


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
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> falcon.App:
    settings = settings or Settings.from_env()
    db = db or Database(settings).open()
    redis_client = redis_client or make_redis(settings)
    templates = make_templates()

    tokens = TokenService(
        settings.secret_key, timedelta(minutes=settings.session_ttl_minutes), redis_client, clock
    )
    throttle = LoginThrottle(
        redis_client,
        per_account=settings.login_max_failures_per_account,
        per_address=settings.login_max_failures_per_address,
        window_seconds=settings.login_window_seconds,
    )
    accounts = AccountService(db, tokens, throttle, settings.bcrypt_rounds)
    composer = EmailComposer(templates, settings.mail_domain, settings.public_base_url)
    public_throttle = PublicTicketThrottle(
        redis_client,
        per_address=settings.public_tickets_per_address,
        per_requester=settings.public_tickets_per_requester,
    )
    tickets = TicketService(db, redis_client, composer, clock, public_throttle=public_throttle)
    pages = Pages(templates, tokens)
    secure = settings.secure_cookies

    app = falcon.App(
        middleware=[
            RequestIdMiddleware(),
            RequestSizeLimit(settings.max_upload_bytes * settings.max_upload_files + 2**20),
            AuthMiddleware(tokens, accounts.active_user, access_table(ROUTES)),
        ]
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.secure_cookies_by_default = secure
    register_error_handlers(app, ErrorRenderer(templates))

    ticket_page = TicketPage(tickets, accounts, pages)
    resources: dict[str, object] = {
        "health": HealthResource(HealthChecker(db, redis_client)),
        "openapi": OpenAPIResource(build_openapi(ROUTES, SCHEMAS)),
        "login": LoginResource(accounts, secure),
        "logout": LogoutResource(accounts, secure),
        "me": MeResource(accounts),
        "users": UsersResource(accounts),
        "user": UserResource(accounts),
        "login_page": LoginPage(accounts, pages, secure),
        "logout_page": LogoutPage(accounts, secure),
        "users_page": UsersPage(accounts, pages),
        "user_page": UserPage(accounts, pages),
        "tickets": TicketsResource(tickets),
        "ticket": TicketResource(tickets),
        "ticket_assign": TicketAssignResource(tickets),
        "ticket_events": TicketEventsResource(tickets),
        "public_form": PublicFormPage(tickets, pages, settings.secret_key),
        "submitted_page": SubmittedPage(pages, settings.secret_key),
        "tickets_page": TicketsPage(tickets, accounts, pages),
        "ticket_page": ticket_page,
        "ticket_assign_page": TicketAssignPage(tickets, ticket_page),
    }
    for route in ROUTES:
        app.add_route(route.path, resources[route.resource])
    app.add_static_route("/static", str(STATIC_DIR))
    return app
