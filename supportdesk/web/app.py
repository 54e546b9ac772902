"""create_app(settings) -> falcon.App: the one place that builds the application."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import falcon
import redis

from supportdesk.core.clients import ClientAddresses
from supportdesk.core.config import PROJECT_ROOT, Settings
from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.core.signing import WebhookSignature
from supportdesk.web.errors import ErrorRenderer, register_error_handlers
from supportdesk.web.middleware import (
    AuthMiddleware,
    ClientAddressMiddleware,
    RequestIdMiddleware,
    RequestLog,
    RequestSizeLimit,
    SecurityHeaders,
    StorageDeadline,
    api_token_loader,
    staff_loader,
)
from supportdesk.web.resources import (
    api_tokens,
    attachments,
    audit,
    auth,
    customer,
    devmail,
    inbound,
    mailbox_oauth,
    mailboxes,
    merging,
    messages,
    notifications,
    outbox,
    outgoing,
    participants,
    password_reset,
    privacy,
    quarantine,
    saved_replies,
    spam,
    system,
    tickets,
    two_factor,
    users,
    webhooks,
)
from supportdesk.web.routes import Route, access_table, file_routes, link_table, served_routes
from supportdesk.web.services import build_services
from supportdesk.webhooks.targets import AddressResolver

STATIC_DIR = PROJECT_ROOT / "static"
# The body limit of every route that takes no files.
SMALL_BODY = 64 * 1024
# A JSON or urlencoded body to a route that takes files: a message of 50,000 characters,
# escaped (\uXXXX in JSON, %XX per UTF-8 byte in a form), and the fields around it.
TEXT_BODY = 512 * 1024
# The largest text field of a multipart form: a message of 50,000 characters in UTF-8.
TEXT_FIELD_BYTES = 256 * 1024
RESOURCE_BUILDERS = (
    system.build,
    auth.build,
    users.build,
    tickets.build,
    messages.build,
    outgoing.build,
    participants.build,
    attachments.build,
    inbound.build,
    customer.build,
    outbox.build,
    mailboxes.build,
    quarantine.build,
    spam.build,
    devmail.build,
    mailbox_oauth.build,
    merging.build,
    saved_replies.build,
    notifications.build,
    password_reset.build,
    api_tokens.build,
    webhooks.build,
    audit.build,
    privacy.build,
    two_factor.build,
)


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    redis_client: redis.Redis | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    extra_routes: Sequence[tuple[Route, object]] = (),
    webhook_resolver: AddressResolver | None = None,
) -> falcon.App:
    """The app; `extra_routes` (route, resource) are added and guarded like the table's own
    (tests use them to exercise app-wide behaviour on a resource of their own)."""
    settings = settings or Settings.from_env()
    routes = served_routes(settings.is_development) + tuple(route for route, _ in extra_routes)
    services = build_services(
        settings,
        db or Database(settings, for_requests=True).open(),
        redis_client or make_redis(settings),
        clock,
        webhook_resolver=webhook_resolver,
    )
    guard = AuthMiddleware(
        services.tokens,
        staff_loader(
            services.sessions.session_user,
            settings.agents_see_unassigned,
            settings.require_2fa_for,
        ),
        access_table(routes),
        services.upload_limits,
        WebhookSignature(settings.inbound_email_secret, clock),
        services.links,
        link_table(routes),
        api_token_loader(
            services.api_tokens.authenticate,
            settings.agents_see_unassigned,
            settings.require_2fa_for,
        ),
    )
    app = falcon.App(
        middleware=[
            RequestIdMiddleware(),
            RequestLog(),
            StorageDeadline(),
            SecurityHeaders(https=settings.secure_cookies),
            ClientAddressMiddleware(ClientAddresses(settings.trusted_proxies)),
            RequestSizeLimit(
                file_routes(routes),
                access_table(routes),
                small=SMALL_BODY,
                text=TEXT_BODY,
                # Files, the form around them, and base64's third for inbound email.
                large=int(settings.max_upload_bytes * settings.max_upload_files * 1.4) + 2**20,
            ),
            guard,
        ]
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.secure_cookies_by_default = settings.secure_cookies
    errors = ErrorRenderer(services.templates, services.tokens.csrf_token, guard.identify_quietly)
    register_error_handlers(app, errors)
    multipart = app.req_options.media_handlers[falcon.MEDIA_MULTIPART].parse_options
    multipart.max_body_part_count = settings.max_upload_files + 32  # the files and fields
    multipart.max_body_part_buffer_size = TEXT_FIELD_BYTES
    resources: dict[str, object] = {}
    for build in [*RESOURCE_BUILDERS, lambda _: {r.resource: res for r, res in extra_routes}]:
        built = build(services)
        # Two builders naming one resource would silently serve the last one's routes.
        twice = resources.keys() & built.keys()
        if twice:
            raise RuntimeError(f"resources built twice: {', '.join(sorted(twice))}")
        resources |= built
    for route in routes:
        app.add_route(route.path, resources[route.resource])
    app.add_static_route("/static", str(STATIC_DIR))
    return app
