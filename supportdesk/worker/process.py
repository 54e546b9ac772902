"""`supportdesk worker`: one worker process, built from the settings like `create_app`."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

import redis

from supportdesk.accounts.password_resets import PasswordResets
from supportdesk.core.config import Settings
from supportdesk.core.db import Database
from supportdesk.core.redis_client import make_redis
from supportdesk.files.storage import make_storage
from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.mail.mailboxes.tokens import AccessTokens
from supportdesk.mail.outbound.mailbox_alerts import ReauthorizeAlerts
from supportdesk.mail.outbound.password_reset import ResetMailer
from supportdesk.mail.outbound.sender import SmtpSender
from supportdesk.mail.outbound.smtp_routes import SmtpRoutes
from supportdesk.worker.delivery import Timings
from supportdesk.worker.password_resets import ResetRequestsLoop
from supportdesk.worker.webhooks import DeliveryListener, WebhookWorker, webhook_client
from supportdesk.worker.worker import EmailWorker

if TYPE_CHECKING:  # loaded by the CLI only when there are mailboxes to fetch
    from supportdesk.mail.inbound.fetchers import MailboxFetchers
    from supportdesk.worker.scheduler import Scheduler

log = logging.getLogger("supportdesk.worker")


def build_worker(settings: Settings, *, worker_id: str | None = None) -> EmailWorker:
    db = Database(settings.replace(db_pool_min_size=1, db_pool_max_size=2), name="worker")
    redis_client = make_redis(settings)
    sender = SmtpSender(
        settings.smtp_host,
        settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout,
    )
    return EmailWorker(
        db.open(),
        redis_client,
        sender,
        routes=SmtpRoutes(
            db,
            sender,
            mailbox_login(db, redis_client, settings),
            timeout=settings.smtp_timeout,
        ),
        default_from=settings.mail_from,
        bounce_address=settings.support_address,
        timings=Timings.from_settings(settings),
        worker_id=worker_id,
        # Made when the first email with files is sent: S3 loads boto3, which a worker
        # that never sends a file need not hold in memory.
        storage=lambda: make_storage(settings),
    )


def build_reset_requests(settings: Settings) -> ResetRequestsLoop:
    """The thread that answers password-reset requests, with its own small pool."""
    db = Database(settings.replace(db_pool_min_size=0, db_pool_max_size=1), name="resets")
    redis_client = make_redis(settings)
    resets = PasswordResets.from_settings(db.open(), redis_client, settings)
    return ResetRequestsLoop(resets, ResetMailer(db, redis_client, resets, settings))


def build_webhook_worker(
    settings: Settings, *, worker_id: str | None = None
) -> tuple[WebhookWorker, DeliveryListener]:
    """The outgoing webhooks' worker (a thread of the worker process, with a small pool of
    its own) and the listener that queues committed deliveries (DESIGN.md section 13)."""
    db = Database(settings.replace(db_pool_min_size=1, db_pool_max_size=2), name="webhooks")
    redis_client = make_redis(settings)
    worker = WebhookWorker(
        db.open(),
        redis_client,
        webhook_client(settings),
        SecretBox(settings),
        timings=Timings.from_settings(settings),
        worker_id=worker_id,
    )
    listener = DeliveryListener(
        settings.direct_database_url or settings.database_url or "", redis_client
    )
    return worker, listener


def mailbox_login(db: Database, redis_client: redis.Redis, settings: Settings) -> MailboxLogin:
    """How the worker logs in to company mailboxes: OAuth access tokens refreshed ahead of
    expiry, and a refused refresh emailed to the ADMINs (section 10)."""
    secrets = SecretBox(settings)
    tokens = AccessTokens(
        db, settings, secrets, on_reauthorize=ReauthorizeAlerts(db, redis_client, settings)
    )
    return MailboxLogin(
        secrets,
        access_token=tokens.current,
        plain_text_allowed=settings.environment != "production",
    )


def run_worker(
    settings: Settings,
    fetchers: MailboxFetchers | None = None,
    scheduler: Scheduler | None = None,
) -> int:
    """Run until SIGTERM or SIGINT: the current delivery finishes, the rest stays queued.
    With `fetchers`, the company's mailboxes are fetched too, in threads of their own; each
    stops after the message it is storing. With `scheduler`, its jobs run in a thread of
    their own every SCHEDULER_SECONDS, on one host at a time (worker/scheduler.py)."""
    worker = build_worker(settings)
    resets = build_reset_requests(settings)
    resetting = threading.Thread(target=resets.run, name="password-resets", daemon=True)
    webhooks, listener = build_webhook_worker(settings, worker_id=worker.worker_id)
    helpers = [
        threading.Thread(target=webhooks.run, name="webhooks", daemon=True),
        threading.Thread(target=listener.run, name="webhook-listener", daemon=True),
    ]
    fetching = None
    if fetchers is not None:
        fetching = threading.Thread(target=fetchers.run, name="mailboxes", daemon=True)
    scheduling = None
    if scheduler is not None:
        scheduling = threading.Thread(target=scheduler.run, name="scheduler", daemon=True)

    def on_signal(signum: int, frame: object) -> None:
        log.info(
            "worker %s: %s received, finishing the current email",
            worker.worker_id,
            signal.Signals(signum).name,
        )
        worker.stop()
        resets.stop()
        webhooks.stop()
        listener.stop()
        if fetchers is not None:
            fetchers.stop()
        if scheduler is not None:
            scheduler.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info(
        "worker %s sending through %s:%s%s",
        worker.worker_id,
        settings.smtp_host,
        settings.smtp_port,
        " (STARTTLS)" if settings.smtp_starttls else "",
    )
    resetting.start()
    if fetching is not None:
        fetching.start()
    if scheduling is not None:
        scheduling.start()
    for helper in helpers:
        helper.start()
    try:
        worker.run()
    finally:
        resets.stop()
        resetting.join(10)
        resets.mailer.db.close()
        webhooks.stop()  # a webhook being sent finishes first
        listener.stop()
        for helper in helpers:
            helper.join(30)
        webhooks.db.close()
        if scheduling is not None and scheduler is not None:
            scheduler.stop()  # a job stops after the ticket it is changing
            scheduling.join(30)
        if fetching is not None and fetchers is not None:
            fetchers.stop()
            fetching.join()
            fetchers.close()
        worker.db.close()
    return 0
