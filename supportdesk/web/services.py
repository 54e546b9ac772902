"""Every long-lived object of a web process, built once and passed down by constructor.

`create_app` builds one `Services` and hands it to each `resources/<area>.py`, which builds
its own resources from it. Tests and benchmarks build the same object instead of wiring
services by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jinja2
import redis

from supportdesk.accounts.api_tokens import ApiTokenService
from supportdesk.accounts.audit_log import AuditLog
from supportdesk.accounts.auth import ChallengeTokens, TokenService
from supportdesk.accounts.password_resets import PasswordResets
from supportdesk.accounts.preferences import PreferenceService
from supportdesk.accounts.sessions import SessionService
from supportdesk.accounts.staff import StaffService
from supportdesk.accounts.two_factor import TwoFactorService
from supportdesk.core.config import MIN_SECRET_KEY, ConfigError, Settings
from supportdesk.core.db import Database
from supportdesk.core.ratelimit import (
    AckThrottle,
    CustomerReplyThrottle,
    LoginThrottle,
    PublicTicketThrottle,
    SmtpClientThrottle,
)
from supportdesk.core.signing import SignedLinks
from supportdesk.files.storage import Storage, make_storage
from supportdesk.files.uploads import UploadLimits
from supportdesk.mail.inbound.forwarding import ForwardsIn
from supportdesk.mail.inbound.quarantine import QuarantineService
from supportdesk.mail.inbound.sandbox import ParseSandbox
from supportdesk.mail.inbound.service import InboundService
from supportdesk.mail.mailboxes.connect import MailboxLogin
from supportdesk.mail.mailboxes.oauth import OAuthFlow
from supportdesk.mail.mailboxes.secrets import SecretBox
from supportdesk.mail.mailboxes.service import CONNECTION_TEST_SECONDS, MailboxService
from supportdesk.mail.mailboxes.tokens import AccessTokens
from supportdesk.mail.outbound.compose import EmailComposer
from supportdesk.mail.outbound.deliveries import DeliveryService
from supportdesk.mail.outbound.mailbox_alerts import ReauthorizeAlerts
from supportdesk.privacy.erasure import ErasureService
from supportdesk.privacy.export import ExportService
from supportdesk.tickets.assignment import AssignmentService
from supportdesk.tickets.attachments import AttachmentService
from supportdesk.tickets.bulk import BulkService
from supportdesk.tickets.customer_replies import CustomerReplies
from supportdesk.tickets.following import FollowService
from supportdesk.tickets.merging import MergeService
from supportdesk.tickets.messages import MessageService
from supportdesk.tickets.notifications import Notifier
from supportdesk.tickets.outgoing import OutgoingService
from supportdesk.tickets.participant_service import ParticipantService
from supportdesk.tickets.participants import Copying
from supportdesk.tickets.saved_replies import SavedReplies
from supportdesk.tickets.saved_reply_files import SavedReplyFiles
from supportdesk.tickets.service import TicketService
from supportdesk.tickets.spam import BlockedSenders, SpamService
from supportdesk.web.health import HealthChecker
from supportdesk.web.resources.common import Pages
from supportdesk.web.templating import make_templates
from supportdesk.webhooks.service import WebhookService
from supportdesk.webhooks.targets import AddressResolver, DnsAddresses


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    redis: redis.Redis
    templates: jinja2.Environment
    pages: Pages
    tokens: TokenService
    links: SignedLinks
    sessions: SessionService
    staff: StaffService
    composer: EmailComposer
    storage: Storage
    upload_limits: UploadLimits
    attachments: AttachmentService
    tickets: TicketService
    assignment: AssignmentService
    messages: MessageService
    # Staff write first (section 11): a ticket opened by an email to a customer.
    outgoing: OutgoingService
    participants: ParticipantService
    deliveries: DeliveryService
    inbound: InboundService
    inbound_parser: ParseSandbox
    quarantine: QuarantineService
    smtp_clients: SmtpClientThrottle
    customers: CustomerReplies
    health: HealthChecker
    # Company mailboxes (section 10): their secrets, OAuth tokens and logins (the worker's
    # fetchers log in the same way), and their management.
    secrets: SecretBox
    access_tokens: AccessTokens
    mailbox_login: MailboxLogin
    oauth: OAuthFlow
    mailboxes: MailboxService
    # Merge and split (section 12).
    merging: MergeService
    # The shared inbox (section 12): bulk actions, spam and the blocked senders.
    bulk: BulkService
    spam: SpamService
    blocked_senders: BlockedSenders
    # Saved replies (section 12): shared and personal, filled in for a ticket.
    saved_replies: SavedReplies
    saved_reply_files: SavedReplyFiles
    # Notices to staff (section 12): who is told of what, one's preferences, following.
    notifier: Notifier
    preferences: PreferenceService
    following: FollowService
    # Accounts (section 13): password reset by email, personal API tokens.
    password_resets: PasswordResets
    api_tokens: ApiTokenService
    # Outgoing webhooks (section 13): registrations, deliveries, the retry of a DEAD one.
    webhooks: WebhookService
    # The audit log (section 13), as ADMINs read it.
    audit_log: AuditLog
    # A customer's personal data (section 13): export and erasure.
    customer_export: ExportService
    erasure: ErasureService
    # Two-factor authentication (section 13): enrolment, reset, the code at login.
    two_factor: TwoFactorService


def build_services(
    settings: Settings,
    db: Database,
    redis_client: redis.Redis,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    storage: Storage | None = None,
    webhook_resolver: AddressResolver | None = None,
) -> Services:
    """`webhook_resolver`: how a webhook's host is resolved to be checked (DNS; tests give
    a DNS server of their own)."""
    if len(settings.secret_key) < MIN_SECRET_KEY:
        # Settings built in code (tests, benchmarks) skip parse(): an empty key would sign
        # every token and link with nothing.
        raise ConfigError({"SECRET_KEY": f"must be at least {MIN_SECRET_KEY} characters"})
    templates = make_templates(auto_reload=settings.is_development)
    templates.globals["development"] = settings.is_development  # the dev mailbox's link
    tokens = TokenService(
        settings.secret_key, timedelta(minutes=settings.session_ttl_minutes), clock
    )
    throttle = LoginThrottle(
        redis_client,
        per_account=settings.login_max_failures_per_account,
        per_address=settings.login_max_failures_per_address,
        slowdown_after=settings.login_account_slowdown_after,
        window_seconds=settings.login_window_seconds,
    )
    composer = EmailComposer.from_settings(templates, settings, clock)
    notifier = Notifier(composer, agents_see_unassigned=settings.agents_see_unassigned)
    public_throttle = PublicTicketThrottle(
        redis_client,
        per_address=settings.public_tickets_per_address,
        per_requester=settings.public_tickets_per_requester,
    )
    deliveries = DeliveryService(db, redis_client, clock)
    storage = storage or make_storage(settings)
    links = SignedLinks(settings.secret_key, clock)
    attachments = AttachmentService(db, storage, links, settings.public_base_url, clock)
    ack_throttle = AckThrottle(
        redis_client,
        per_address=settings.acks_per_address,
        per_domain=settings.acks_per_domain,
        per_hour=settings.acks_per_hour,
    )
    # Who may be copied on a ticket (section 11): the cap, and never our own address.
    copying = Copying(settings.max_participants, settings.support_address)
    tickets = TicketService(
        db,
        redis_client,
        composer,
        attachments,
        clock,
        public_throttle=public_throttle,
        ack_throttle=ack_throttle,
        copying=copying,
        notifier=notifier,
    )
    upload_limits = UploadLimits(settings.max_upload_bytes, settings.max_upload_files)
    saved_reply_files = SavedReplyFiles(db, attachments, upload_limits, clock)
    messages = MessageService(
        db,
        redis_client,
        composer,
        attachments,
        clock,
        copying=copying,
        notifier=notifier,
        saved_files=saved_reply_files,
    )
    customers = CustomerReplies(
        db,
        redis_client,
        attachments,
        composer,
        CustomerReplyThrottle(
            redis_client,
            per_ticket=settings.customer_replies_per_ticket,
            per_address=settings.customer_replies_per_address,
        ),
        clock,
        copying=copying,
        notifier=notifier,
    )
    inbound = InboundService(
        db,
        redis_client,
        tickets,
        messages,
        customers,
        support_address=settings.support_address,
        tokens=composer.tokens,
        limits=upload_limits,
        ack_throttle=ack_throttle,
        agents_see_unassigned=settings.agents_see_unassigned,
        clock=clock,
        forwards=ForwardsIn(
            db,
            tickets,
            support_address=settings.support_address,
            max_participants=settings.max_participants,
            clock=clock,
        ),
    )
    inbound_parser = ParseSandbox(settings.inbound_parse_seconds)
    secrets = SecretBox(settings)
    access_tokens = AccessTokens(
        db,
        settings,
        secrets,
        on_reauthorize=ReauthorizeAlerts(db, redis_client, settings, clock),
        clock=clock,
    )
    mailbox_login = MailboxLogin(
        secrets,
        access_token=access_tokens.current,
        plain_text_allowed=settings.environment != "production",
    )
    assignment = AssignmentService(db, redis_client, composer, clock, notifier=notifier)
    two_factor = TwoFactorService(db, secrets, throttle, settings.require_2fa_for, clock)
    return Services(
        settings=settings,
        db=db,
        redis=redis_client,
        templates=templates,
        pages=Pages(templates, tokens),
        tokens=tokens,
        links=links,
        sessions=SessionService(
            db,
            tokens,
            throttle,
            settings.bcrypt_rounds,
            two_factor,
            ChallengeTokens(settings.secret_key, clock=clock),
        ),
        staff=StaffService(db, settings.bcrypt_rounds),
        composer=composer,
        storage=storage,
        upload_limits=upload_limits,
        attachments=attachments,
        tickets=tickets,
        assignment=assignment,
        messages=messages,
        outgoing=OutgoingService(
            db,
            redis_client,
            composer,
            attachments,
            clock,
            max_participants=settings.max_participants,
            support_address=settings.support_address,
        ),
        participants=ParticipantService(db, copying, clock),
        deliveries=deliveries,
        inbound=inbound,
        inbound_parser=inbound_parser,
        quarantine=QuarantineService(db, inbound, inbound_parser),
        smtp_clients=SmtpClientThrottle(
            redis_client,
            per_client=settings.inbound_smtp_per_client,
            relays=settings.inbound_smtp_relays,
        ),
        customers=customers,
        health=HealthChecker(db, redis_client, deliveries),
        secrets=secrets,
        access_tokens=access_tokens,
        mailbox_login=mailbox_login,
        oauth=OAuthFlow(db, redis_client, settings, secrets, clock),
        mailboxes=MailboxService(
            db,
            secrets,
            mailbox_login,
            plain_text_allowed=mailbox_login.plain_text_allowed,
            # The connection test answers within a web request's time (each step's wait).
            timeout=min(settings.imap_timeout_seconds, CONNECTION_TEST_SECONDS),
        ),
        merging=MergeService(db, clock),
        bulk=BulkService(db, assignment, clock),
        spam=SpamService(db, clock),
        blocked_senders=BlockedSenders(db, clock),
        saved_replies=SavedReplies(db, clock, saved_reply_files),
        saved_reply_files=saved_reply_files,
        notifier=notifier,
        preferences=PreferenceService(db),
        following=FollowService(db, clock),
        password_resets=PasswordResets.from_settings(db, redis_client, settings, clock),
        api_tokens=ApiTokenService(db, clock),
        webhooks=WebhookService(
            db,
            redis_client,
            secrets,
            webhook_resolver or DnsAddresses(timeout=settings.webhook_timeout_seconds),
            allow_private=settings.webhook_allow_private,
            clock=clock,
        ),
        audit_log=AuditLog(db),
        customer_export=ExportService(db, storage, settings.secret_key, clock),
        erasure=ErasureService(db, storage, settings.secret_key),
        two_factor=two_factor,
    )
