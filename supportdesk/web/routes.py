"""Every route in one table: path, resource, and for each method who may call it.

`create_app` registers these routes, the OpenAPI document is generated from them, and the
access guard (and its test, one row per route x role) reads the `who` of each operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supportdesk.accounts.api_tokens import NEW_API_TOKEN
from supportdesk.accounts.audit_log import AUDIT_FILTERS
from supportdesk.accounts.password_resets import RESET_CONFIRM, RESET_REQUEST
from supportdesk.accounts.preferences import NOTIFICATION_PREFERENCES
from supportdesk.accounts.sessions import LOGIN, LOGIN_CODE, PASSWORD_CHANGE
from supportdesk.accounts.staff import NEW_USER, USER_CHANGE
from supportdesk.accounts.two_factor import TWO_FACTOR_CONFIRM, TWO_FACTOR_OFF
from supportdesk.core.fields import Body, Query
from supportdesk.mail.inbound.quarantine import QUARANTINE_FILTERS, QUARANTINE_TICKET
from supportdesk.mail.mailboxes.service import MAILBOX_CHANGE, NEW_MAILBOX
from supportdesk.mail.outbound.deliveries import OUTBOX_FILTERS
from supportdesk.tickets.bulk import BULK_BODIES, MAX_BULK
from supportdesk.tickets.inputs import (
    ASSIGNMENT,
    NEW_MESSAGE,
    NEW_PARTICIPANT,
    NEW_TICKET,
    TICKET_CHANGE,
    TICKET_FILTERS,
)
from supportdesk.tickets.merging import MERGE
from supportdesk.tickets.outgoing import STAFF_EMAIL
from supportdesk.tickets.saved_replies import (
    NEW_SAVED_REPLY,
    RENDER_SAVED_REPLY,
    SAVED_REPLY_CHANGE,
)
from supportdesk.tickets.service import TOTAL_CAP
from supportdesk.tickets.spam import NEW_BLOCKED_SENDER
from supportdesk.web.guards import (
    ADMINS,
    ANYONE,
    ENROLLING,
    LINK,
    MANAGERS,
    PROVIDER,
    STAFF,
    STAFF_OR_LINK,
)
from supportdesk.web.schemas import (
    API_TOKEN_CREATED,
    API_TOKEN_LIST,
    AUDIT_PAGE,
    BLOCKED_SENDER_ENVELOPE,
    BLOCKED_SENDER_LIST,
    BULK_RESULTS,
    DELIVERY_ENVELOPE,
    DELIVERY_PAGE,
    ERASED,
    ERROR,
    FOLLOWING,
    HEALTH_SCHEMA,
    MAILBOX_ENVELOPE,
    MAILBOX_LIST,
    MAILBOX_TESTED,
    MERGED,
    MESSAGE_POSTED,
    PARTICIPANT_ENVELOPE,
    PARTICIPANT_LIST,
    PASSWORD_RESET_ACCEPTED,
    PASSWORD_SET,
    QUARANTINE_PAGE,
    RECEIVED,
    RECOVERY_CODES,
    SAVED_REPLY_ENVELOPE,
    SAVED_REPLY_LIST,
    SAVED_REPLY_TEXT,
    SAVED_REPLY_UPLOAD,
    SPAM_MARKED,
    SPLIT,
    TICKET_DETAIL,
    TICKET_ENVELOPE,
    TWO_FACTOR_ENROLMENT,
    USER_ENVELOPE,
    WEBHOOK_DELIVERY_ENVELOPE,
    WEBHOOK_DELIVERY_LIST,
    WEBHOOK_ENVELOPE,
    WEBHOOK_LIST,
    header_param,
    json_response,
    query_param,
    ref,
)
from supportdesk.webhooks.service import DELIVERY_FILTERS, NEW_WEBHOOK, WEBHOOK_CHANGE


@dataclass(frozen=True)
class Operation:
    who: str
    summary: str
    responses: dict[str, Any] = field(default_factory=dict)
    # The declared fields of its JSON body (and of its multipart form with `takes_files`)
    # and of its query string: the same declarations the resource's parser checks by.
    body: Body | None = None
    # Bodies it reads instead of `body` (published as oneOf), told apart as `summary` says.
    other_bodies: tuple[Body, ...] = ()
    query: Query | None = None
    # A body that is not a set of fields (a raw email), and other parameters, as published.
    request_body: dict[str, Any] | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    # Takes files (multipart/form-data): the large body limit applies; else the small one.
    takes_files: bool = False
    # For STAFF_OR_LINK and LINK: what its signed links sign (auth.SignedLinks); the
    # route's one path parameter is the subject.
    link: str | None = None


@dataclass(frozen=True)
class Route:
    path: str
    resource: str  # the key of the resource object built by create_app
    operations: dict[str, Operation]
    in_api_doc: bool = True
    # Served only when ENVIRONMENT=development (the local mailbox).
    dev_only: bool = False


def page(
    path: str,
    resource: str,
    *,
    dev_only: bool = False,
    takes_files: tuple[str, ...] = (),
    **methods: tuple[str, str],
) -> Route:
    """A server-rendered page: for each method, (who, what it does); not in the API document.
    `takes_files` names the methods whose form carries files."""
    operations = {
        method: Operation(who, summary, takes_files=method in takes_files)
        for method, (who, summary) in methods.items()
    }
    return Route(path, resource, operations, in_api_doc=False, dev_only=dev_only)


ROUTES: tuple[Route, ...] = (
    Route(
        "/healthz",
        "health",
        {
            "GET": Operation(
                ANYONE,
                "Health: 200 when PostgreSQL and Redis answer, else 503; how email is doing, and "
                "the mailboxes an ADMIN must connect again (which do not make it a 503)",
                responses={"200": json_response("Both answer", HEALTH_SCHEMA), "503": ERROR},
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
                responses={"200": json_response("The document", {"type": "object"})},
            ),
        },
    ),
    Route(
        "/api/auth/login",
        "login",
        {
            "POST": Operation(
                ANYONE,
                "Log in: a token for API clients and the session cookie for browsers; 401 "
                "alike for unknown email, wrong password and deactivated user; 429 after "
                "repeated failures. For an account with two-factor on, a right password "
                "answers a challenge instead (no session yet): POST /api/auth/login/2fa",
                body=LOGIN,
                responses={
                    "200": json_response(
                        "Logged in, or the password was right and a code is needed",
                        {"oneOf": [ref("Session"), ref("LoginChallenge")]},
                    ),
                    "401": ERROR,
                    "422": ERROR,
                    "429": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/auth/login/2fa",
        "login_code",
        {
            "POST": Operation(
                ANYONE,
                "Finish a login with two-factor: the challenge of POST /api/auth/login and a "
                "code of the authenticator app, or a recovery code (each works once). A code "
                "accepted once is refused after (401); wrong codes count like wrong passwords "
                "(429); an expired or forged challenge is a 401",
                body=LOGIN_CODE,
                responses={
                    "200": json_response("Logged in", ref("Session")),
                    "401": ERROR,
                    "422": ERROR,
                    "429": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/me/2fa",
        "my_two_factor",
        {
            "GET": Operation(
                ENROLLING,
                "One's two-factor state",
                responses={"200": json_response("The state", ref("TwoFactorState"))},
            ),
            "POST": Operation(
                ENROLLING,
                "Start enrolling: a fresh secret, its otpauth URI and QR code (SVG); nothing "
                "changes at login until it is confirmed. 409 when two-factor is on already",
                responses={
                    "200": json_response("The secret to put in an app", TWO_FACTOR_ENROLMENT),
                    "409": ERROR,
                },
            ),
            "DELETE": Operation(
                STAFF,
                "Turn one's two-factor off, with the password and a code (a recovery code may "
                "stand in); wrong ones count like failed logins (429). 403 when "
                "REQUIRE_2FA_FOR covers one's role; 409 when it is not on",
                body=TWO_FACTOR_OFF,
                responses={"204": {"description": "Off"}, "409": ERROR, "429": ERROR},
            ),
        },
    ),
    Route(
        "/api/me/2fa/confirm",
        "my_two_factor_confirm",
        {
            "POST": Operation(
                ENROLLING,
                "Turn two-factor on with a code of the enrolment started: the ten recovery "
                "codes, shown this once (stored hashed). 409 when no enrolment was started",
                body=TWO_FACTOR_CONFIRM,
                responses={"200": json_response("On", RECOVERY_CODES), "409": ERROR},
            ),
        },
    ),
    Route(
        "/api/auth/logout",
        "logout",
        {
            "POST": Operation(
                ENROLLING,
                "Log out: this token stops working and the cookie is cleared",
                responses={"204": {"description": "Logged out"}, "401": ERROR},
            ),
        },
    ),
    Route(
        "/api/auth/password",
        "password",
        {
            "POST": Operation(
                STAFF,
                "Change one's own password, proven by the current one. Every other session "
                "of the user ends; this one goes on with the token (and cookie) returned. "
                "Wrong current passwords count like failed logins (429)",
                body=PASSWORD_CHANGE,
                # 401, 403, 415 and 422 are implied (openapi.implied_errors).
                responses={
                    "200": json_response("Changed; the new session", ref("Session")),
                    "429": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/auth/password-reset",
        "password_reset",
        {
            "POST": Operation(
                ANYONE,
                "Ask for a password-reset link: always 202 with the same body, whether the "
                "address has an active account, a deactivated one or none, and past the rate "
                "limits (PASSWORD_RESETS_PER_ADDRESS_PER_HOUR, ..._PER_ACCOUNT_PER_HOUR), "
                "where nothing is sent. An active account is emailed a single-use link valid "
                "30 minutes; a newer link or a password change ends the older ones",
                body=RESET_REQUEST,
                responses={"202": json_response("Taken", PASSWORD_RESET_ACCEPTED)},
            ),
        },
    ),
    Route(
        "/api/auth/password-reset/confirm",
        "password_reset_confirm",
        {
            "POST": Operation(
                ANYONE,
                "Set a new password with the token of a reset link (the password rules of "
                "POST /api/auth/password). Every session of the user ends; log in again. A "
                "link used, expired or replaced by a newer one is a 422 on `token`",
                body=RESET_CONFIRM,
                responses={"200": json_response("The password is set", PASSWORD_SET)},
            ),
        },
    ),
    Route(
        "/api/me/tokens",
        "my_tokens",
        {
            "GET": Operation(
                STAFF,
                "One's own API tokens, newest first (never their secrets)",
                responses={"200": json_response("The tokens", API_TOKEN_LIST)},
            ),
            "POST": Operation(
                STAFF,
                "Make an API token: its secret (`sd_pat_...`) is in this answer only. It acts "
                "as its user (the role as it is at each request) until it expires or is "
                "revoked, or the user is deactivated; accepted as `Authorization: Bearer` "
                "only, and needs no CSRF token",
                body=NEW_API_TOKEN,
                responses={"201": json_response("Made", API_TOKEN_CREATED)},
            ),
        },
    ),
    Route(
        "/api/me/tokens/{token_id:int}",
        "my_token",
        {
            "DELETE": Operation(
                STAFF,
                "Revoke one of one's own API tokens: it stops working at once (404 for "
                "another user's)",
                responses={"204": {"description": "Revoked"}},
            ),
        },
    ),
    Route(
        "/api/me/notifications",
        "my_notifications",
        {
            "GET": Operation(
                STAFF,
                "What one is emailed: a new ticket one may see, a customer reply on a ticket "
                "one is assigned or follows, an assignment by someone else, a mention in an "
                "internal note",
                responses={
                    "200": json_response("The preferences", ref("NotificationPreferencesState"))
                },
            ),
            "PUT": Operation(
                STAFF,
                "Replace all four preferences (each a boolean; 422 for one missing or not a "
                "boolean)",
                body=NOTIFICATION_PREFERENCES,
                responses={"200": json_response("Saved", ref("NotificationPreferencesState"))},
            ),
        },
    ),
    Route(
        "/api/auth/me",
        "me",
        {
            "GET": Operation(
                ENROLLING,
                "The current user, and the CSRF token of this session",
                responses={
                    "200": json_response(
                        "The current user",
                        {
                            "type": "object",
                            "required": ["user", "csrf_token"],
                            "properties": {"user": ref("User"), "csrf_token": {"type": "string"}},
                        },
                    ),
                    "401": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/users",
        "users",
        {
            "GET": Operation(
                MANAGERS,
                "The staff list (ADMIN, SUB_ADMIN)",
                responses={
                    "200": json_response(
                        "Every staff account",
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": ref("User")}},
                        },
                    ),
                    "401": ERROR,
                    "403": ERROR,
                },
            ),
            "POST": Operation(
                MANAGERS,
                "Add a staff member (ADMIN: any role; SUB_ADMIN: AGENT only)",
                body=NEW_USER,
                responses={
                    "201": json_response("Created", USER_ENVELOPE),
                    "403": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/users/{user_id:int}",
        "user",
        {
            "PATCH": Operation(
                MANAGERS,
                "Change a staff member (ADMIN: anyone; SUB_ADMIN: AGENTs; only ADMIN changes "
                "roles; nobody deactivates or demotes the last active ADMIN, nor themselves)",
                body=USER_CHANGE,
                responses={
                    "200": json_response("Changed", USER_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/users/{user_id:int}/2fa",
        "user_two_factor",
        {
            "DELETE": Operation(
                ADMINS,
                "Reset a staff member's two-factor (a lost device): its secret and recovery "
                "codes go, they enrol again; audited as TWO_FACTOR_RESET. Not one's own (403)",
                responses={"204": {"description": "Reset (or there was none)"}},
            ),
        },
    ),
    Route(
        "/api/tickets",
        "tickets",
        {
            "POST": Operation(
                ANYONE,
                "Open a ticket. NewTicket (public; staff with a session open it on the "
                "customer's behalf): the customer is emailed an acknowledgement with the "
                "ticket number. StaffEmail (staff only: a body with `to`, or from staff "
                "without `email` and `name`): a staff member writes to a customer first; "
                "the ticket's requester is `to`, `cc` are its participants, and the first "
                "message, PUBLIC and by the caller, is emailed at once (To + Cc, From "
                "`mailbox_id` or MAIL_FROM) with no acknowledgement; the ticket is WAITING "
                "and assigned to the caller. A body with `to` without a staff session "
                "(none, an expired one, a cookie without its CSRF token) is a 401 and sends "
                "nothing; our own address, more than MAX_PARTICIPANTS copied, or a mailbox "
                "that is not an active one are 422s.",
                body=NEW_TICKET,
                other_bodies=(STAFF_EMAIL,),
                takes_files=True,
                responses={
                    "201": json_response("Opened", TICKET_ENVELOPE),
                    "202": json_response(
                        "Received without opening a ticket (the public form from a blocked "
                        "sender: kept for ADMINs to review; nobody is emailed)",
                        {
                            "type": "object",
                            "required": ["ticket"],
                            "properties": {"ticket": {"type": "null"}},
                        },
                    ),
                    "400": ERROR,
                    "401": ERROR,
                    "422": ERROR,
                    "429": ERROR,
                },
            ),
            "GET": Operation(
                STAFF,
                "The tickets the caller may see, newest first (an AGENT sees its own, and "
                "with AGENTS_SEE_UNASSIGNED the unassigned ones too: `assigned_to=none` lists "
                "those). `total` "
                f"is exact up to {TOTAL_CAP:,} matches; past that it is {TOTAL_CAP:,} and "
                "`total_capped` is true.",
                query=TICKET_FILTERS,
                responses={
                    "200": json_response(
                        "One page",
                        {
                            "type": "object",
                            "required": ["items", "page", "per_page", "total", "total_capped"],
                            "properties": {
                                "items": {"type": "array", "items": ref("Ticket")},
                                "page": {"type": "integer"},
                                "per_page": {"type": "integer"},
                                "total": {"type": "integer"},
                                "total_capped": {"type": "boolean"},
                            },
                        },
                    ),
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}",
        "ticket",
        {
            "GET": Operation(
                STAFF,
                "One ticket (404 when the caller may not see it), and beside it the people "
                "copied on it (`participants`)",
                responses={"200": json_response("The ticket", TICKET_DETAIL), "404": ERROR},
            ),
            "PATCH": Operation(
                STAFF,
                "Change status and/or priority; each change is a timeline event. A ticket "
                "merged into another is 409: it is changed no more",
                body=TICKET_CHANGE,
                responses={
                    "200": json_response("Changed", TICKET_ENVELOPE),
                    "404": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/assign",
        "ticket_assign",
        {
            "POST": Operation(
                MANAGERS,
                "Assign to an active staff member, or unassign with null; the new "
                "assignee is emailed a notice",
                body=ASSIGNMENT,
                responses={
                    "200": json_response("Assigned", TICKET_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/take",
        "ticket_take",
        {
            "POST": Operation(
                STAFF,
                "Take a ticket: assign it to oneself, with an ASSIGNED event (no notice). An "
                "AGENT takes an unassigned ticket (where AGENTS_SEE_UNASSIGNED lets it see "
                "them; else, as every ticket not its own, 404); ADMIN and SUB_ADMIN take any. "
                "Already one's own: 200, nothing changes. 409 when someone else took it "
                "first (it is assigned to another by the time the caller's change holds it)",
                responses={
                    "200": json_response("Taken", TICKET_ENVELOPE),
                    "404": ERROR,
                    "409": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/merge",
        "ticket_merge",
        {
            "POST": Operation(
                STAFF,
                "Merge this ticket into `into` (DESIGN.md section 12): its messages, files, "
                "participants (and its requester, when not the target's) move there; it becomes "
                "CLOSED with a MERGED_INTO event, the target gets MERGED_FROM, and mail threaded "
                "to it lands in the target from then on. 404 when the caller may not see either "
                "ticket; 422 (on `into`) merging a ticket into itself, a ticket already merged, "
                "or into a merged ticket (which would make a chain or a circle)",
                body=MERGE,
                responses={
                    "200": json_response("Merged", MERGED),
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/messages/{message_id:int}/split",
        "message_split",
        {
            "POST": Operation(
                STAFF,
                "Open a new ticket from one customer message of this ticket: the message and "
                "its files move there; OPEN, its requester the message's author, the source's "
                "subject, priority and assignee, no acknowledgement; SPLIT_TO on this ticket, "
                "SPLIT_FROM on the new one. 404 for a ticket the caller may not see or a message "
                "of another ticket; 422 for a staff message or note, or the ticket's only message",
                responses={
                    "201": json_response("Opened", SPLIT),
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/follow",
        "ticket_follow",
        {
            "POST": Operation(
                STAFF,
                "Follow a ticket one may see: be emailed its customer replies, as its assignee "
                "is (while one may see it, and with `customer_reply` on). Idempotent",
                responses={"200": json_response("Following", FOLLOWING), "404": ERROR},
            ),
            "DELETE": Operation(
                STAFF,
                "Stop following a ticket one may see. Idempotent",
                responses={"200": json_response("Not following", FOLLOWING), "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/events",
        "ticket_events",
        {
            "GET": Operation(
                STAFF,
                "The timeline, oldest first",
                responses={
                    "200": json_response(
                        "Every event",
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": ref("Event")}},
                        },
                    ),
                    "404": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/messages",
        "ticket_messages",
        {
            "GET": Operation(
                STAFF,
                "The conversation, oldest first, with each message's files",
                responses={
                    "200": json_response(
                        "Every message",
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": ref("Message")}},
                        },
                    ),
                    "404": ERROR,
                },
            ),
            "POST": Operation(
                STAFF,
                "A reply (PUBLIC, emailed to the requester) or an internal note (INTERNAL, "
                "never emailed). A reply on an OPEN ticket moves it to IN_PROGRESS; `status` "
                "sets another in the same request, as its own event. A ticket merged into "
                "another is 409: write to the one it was merged into.",
                body=NEW_MESSAGE,
                takes_files=True,
                responses={
                    "201": json_response("Saved", MESSAGE_POSTED),
                    "404": ERROR,
                    "409": ERROR,
                    "413": ERROR,
                    "415": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/messages/{message_id:int}/original",
        "ticket_message_original",
        {
            "GET": Operation(
                STAFF,
                "An email's HTML as its sender wrote it, sanitized (no script, form, frame "
                "or remote image), as a whole document for a sandboxed frame: served with "
                "`Content-Security-Policy: sandbox ...` (no script runs, nothing loads but "
                "`data:` images and inline styles), framed only by the desk's own pages. "
                "404 for a ticket the caller may not see, a message of another ticket, and "
                "a message that kept no HTML (see `html_available`)",
                responses={
                    "200": {
                        "description": "The sanitized HTML document",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    "404": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/participants",
        "ticket_participants",
        {
            "GET": Operation(
                STAFF,
                "The people copied on the ticket besides its requester (its participants), "
                "in the order they joined: they are Cc'd on every reply, and their email "
                "threads into the ticket like the requester's",
                responses={"200": json_response("Every participant", PARTICIPANT_LIST)},
            ),
            "POST": Operation(
                STAFF,
                "Copy someone on the ticket (a PARTICIPANT_ADDED event): 201. One already "
                "copied is a 200 with them as they are (nothing changes). 422 for an address "
                "that is not valid, the requester, one of our own addresses (MAIL_FROM, "
                "plus-addressed or not, or a company mailbox), or when the ticket already "
                "copies MAX_PARTICIPANTS people",
                body=NEW_PARTICIPANT,
                responses={
                    "200": json_response("Already copied", PARTICIPANT_ENVELOPE),
                    "201": json_response("Copied", PARTICIPANT_ENVELOPE),
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/participants/{email}",
        "ticket_participant",
        {
            "DELETE": Operation(
                STAFF,
                "Stop copying someone (a PARTICIPANT_REMOVED event): no later reply goes to "
                "them, and their email no longer threads into the ticket. 404 when they are "
                "not copied",
                responses={"204": {"description": "No longer copied"}, "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/attachments/{attachment_id:int}",
        "attachment",
        {
            "GET": Operation(
                STAFF_OR_LINK,
                "A file, as a download (Content-Disposition: attachment, the stored type, "
                "nosniff): streamed, or a redirect to a short-lived URL of the storage. Staff "
                "with access to the ticket, or anyone with the signed link of an email "
                "(`expires` and `sig`). `inline=true` shows an image in the page.",
                link="attachment",
                parameters=(
                    query_param("expires", "of a signed link: Unix time", {"type": "integer"}),
                    query_param("sig", "of a signed link", {"type": "string"}),
                    query_param(
                        "inline", "images only: shown, not downloaded", {"type": "boolean"}
                    ),
                ),
                responses={
                    "200": {
                        "description": "The file, served with the type its content was "
                        "checked to be (text/plain, image/png, application/pdf, ...)",
                        "content": {"*/*": {}},
                    },
                    "302": {"description": "To a short-lived URL of the file (S3 storage)"},
                    "401": ERROR,
                    "404": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/inbound/email",
        "inbound_email",
        {
            "POST": Operation(
                PROVIDER,
                "An email from the mail provider: a JSON payload or a raw message/rfc822, "
                'signed (X-Timestamp, X-Signature: sha256=<HMAC of "<timestamp>.<body>">). '
                "It opens a ticket or threads into one; the same Message-ID again is a 200 "
                "naming what is already stored. An email with no usable sender address "
                "(none in From, Reply-To, Sender or Return-Path) is never refused: it is "
                "kept in the quarantine, a 202 with `outcome: quarantined`.",
                request_body={
                    "required": True,
                    "content": {
                        "application/json": {"schema": ref("InboundEmail")},
                        "message/rfc822": {"schema": {"type": "string"}},
                    },
                },
                takes_files=True,
                parameters=(
                    header_param("X-Timestamp", "Unix seconds, within 5 minutes of now"),
                    header_param("X-Signature", "sha256=<hex HMAC-SHA256>"),
                ),
                responses={
                    "200": json_response("Already stored (the same Message-ID)", RECEIVED),
                    "201": json_response("Stored", RECEIVED),
                    "202": json_response(
                        "Kept in the quarantine (no usable sender): no ticket", RECEIVED
                    ),
                    "400": ERROR,
                    "401": ERROR,
                    "415": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/outbox",
        "outbox",
        {
            "GET": Operation(
                ADMINS,
                "Deliveries, newest first, optionally of one status, with attempts and the "
                "last error; `counts` per status are exact up to 10,000",
                query=OUTBOX_FILTERS,
                responses={
                    "200": json_response("One page", DELIVERY_PAGE),
                    "403": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/audit",
        "audit",
        {
            "GET": Operation(
                ADMINS,
                "The audit log, newest first: logins, account and role changes, tokens, "
                "mailboxes, webhooks, exports and erasures, each with who did it (name and "
                "email), to what, from which address and in which request. Filtered by "
                "`actor`, `action` (several separated by commas) and `from`/`to`; paged by "
                "`cursor` (each page's `next_cursor`), never by number: the log only grows",
                query=AUDIT_FILTERS,
                responses={
                    "200": json_response("One page", AUDIT_PAGE),
                    "403": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/outbox/{outbox_id:int}/retry",
        "outbox_retry",
        {
            "POST": Operation(
                ADMINS,
                "Retry a DEAD delivery: PENDING again with a fresh set of attempts, queued "
                "at once (409 for any other status)",
                responses={
                    "200": json_response("Queued again", DELIVERY_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "409": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/quarantine",
        "quarantine",
        {
            "GET": Operation(
                ADMINS,
                "The quarantine, newest first: emails kept but not made tickets (no usable "
                "sender address). `total` is exact up to 10,000",
                query=QUARANTINE_FILTERS,
                responses={
                    "200": json_response("One page", QUARANTINE_PAGE),
                    "403": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/quarantine/{quarantine_id:int}",
        "quarantined",
        {
            "DELETE": Operation(
                ADMINS,
                "Discard a kept email",
                responses={"204": {"description": "Discarded"}, "403": ERROR, "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/quarantine/{quarantine_id:int}/ticket",
        "quarantine_ticket",
        {
            "POST": Operation(
                ADMINS,
                "Open a ticket from a kept email, as sent by `requester_email`: it goes "
                "through the inbound service like any email (its text and files kept; it may "
                "thread into that requester's ticket) and leaves the quarantine",
                body=QUARANTINE_TICKET,
                responses={
                    "200": json_response("Already stored (the same Message-ID)", RECEIVED),
                    "201": json_response("Opened (or threaded)", RECEIVED),
                    "403": ERROR,
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/mailboxes",
        "mailboxes",
        {
            "GET": Operation(
                ADMINS,
                "The company's mailboxes with each one's status, last error and last fetch",
                responses={"200": json_response("Every mailbox", MAILBOX_LIST), "403": ERROR},
            ),
            "POST": Operation(
                ADMINS,
                "Add a mailbox to fetch. PASSWORD needs `password`; OAUTH2 needs "
                "`oauth_provider` (MICROSOFT and GOOGLE fill in their IMAP server) and is "
                "then connected through /mailboxes/{id}/oauth/start. Secrets are stored "
                "encrypted and never returned.",
                body=NEW_MAILBOX,
                responses={
                    "201": json_response("Added", MAILBOX_ENVELOPE),
                    "403": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/mailboxes/{mailbox_id:int}",
        "mailbox",
        {
            "GET": Operation(
                ADMINS,
                "One mailbox",
                responses={
                    "200": json_response("The mailbox", MAILBOX_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                },
            ),
            "PATCH": Operation(
                ADMINS,
                "Change a mailbox; a password not given stays as it is. Its fetcher "
                "connects again with the new settings.",
                body=MAILBOX_CHANGE,
                responses={
                    "200": json_response("Changed", MAILBOX_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
            "DELETE": Operation(
                ADMINS,
                "Stop fetching a mailbox: the mail already imported stays, and its tickets "
                "answer from MAIL_FROM",
                responses={"204": {"description": "Deleted"}, "403": ERROR, "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/mailboxes/{mailbox_id:int}/test",
        "mailbox_test",
        {
            "POST": Operation(
                ADMINS,
                "Test the connection: connect, log in and select the folder. 200 with what "
                "the server showed; 422 naming the stage that failed (`connect`, `tls`, "
                "`login` or `folder` in `details`) and why",
                responses={
                    "200": json_response("Connected", MAILBOX_TESTED),
                    "403": ERROR,
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    # --- outgoing webhooks (DESIGN.md section 13) ---
    Route(
        "/api/webhooks",
        "webhooks",
        {
            "GET": Operation(
                ADMINS,
                "The outgoing webhooks, with how many deliveries of each are waiting or gave up",
                responses={"200": json_response("Every webhook", WEBHOOK_LIST), "403": ERROR},
            ),
            "POST": Operation(
                ADMINS,
                "Register a webhook: the URL to POST to, the events it wants and the secret "
                "its requests are signed with (X-Signature, as the inbound webhook's; stored "
                "encrypted, never returned). A URL whose host is, or resolves to, a private, "
                "loopback, link-local or other non-public address is a 422 (unless "
                "WEBHOOK_ALLOW_PRIVATE); so is one that does not resolve",
                body=NEW_WEBHOOK,
                responses={
                    "201": json_response("Registered", WEBHOOK_ENVELOPE),
                    "403": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/webhooks/{webhook_id:int}",
        "webhook",
        {
            "PATCH": Operation(
                ADMINS,
                "Change a webhook (its URL checked again); a secret not given stays as it is",
                body=WEBHOOK_CHANGE,
                responses={
                    "200": json_response("Changed", WEBHOOK_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
            "DELETE": Operation(
                ADMINS,
                "Remove a webhook and its deliveries, sent or not",
                responses={"204": {"description": "Removed"}, "403": ERROR, "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/webhooks/{webhook_id:int}/deliveries",
        "webhook_deliveries",
        {
            "GET": Operation(
                ADMINS,
                "A webhook's deliveries, newest first, optionally of one status, with "
                "attempts, the receiver's last HTTP status and the last error",
                query=DELIVERY_FILTERS,
                responses={
                    "200": json_response("One page", WEBHOOK_DELIVERY_LIST),
                    "403": ERROR,
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/webhooks/deliveries/{delivery_id:int}/retry",
        "webhook_delivery_retry",
        {
            "POST": Operation(
                ADMINS,
                "Retry a DEAD delivery: PENDING again with a fresh set of attempts, queued at "
                "once (409 for any other status)",
                responses={
                    "200": json_response("Queued again", WEBHOOK_DELIVERY_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "409": ERROR,
                },
            ),
        },
    ),
    # --- bulk actions, spam and blocked senders (DESIGN.md section 12) ---
    Route(
        "/api/tickets/bulk",
        "tickets_bulk",
        {
            "POST": Operation(
                STAFF,
                f"One action on 1 to {MAX_BULK} tickets: `status`, `priority`, `assign` "
                "(ADMIN and SUB_ADMIN: an AGENT's bulk assign is a 403 and nothing is tried) "
                "or `spam`; the body for each action is its own schema. Each ticket is its "
                "own transaction with the events of the single-ticket route (a change to the "
                "same value writes none), and its own result, in the order given: a ticket "
                "the caller may not see is `not_found`, like one that does not exist. 422 "
                "for a body that is not acceptable (too many or repeated PIDs, an unknown "
                "action, a value that does not fit it, an assignee who is not an active "
                "staff member)",
                body=BULK_BODIES["status"],
                other_bodies=(BULK_BODIES["priority"], BULK_BODIES["assign"], BULK_BODIES["spam"]),
                responses={
                    "200": json_response("Each ticket's result", BULK_RESULTS),
                    "403": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/tickets/{pid}/spam",
        "ticket_spam",
        {
            "POST": Operation(
                STAFF,
                "Mark as spam: the ticket is CLOSED with a SPAM event and its requester's "
                "address is blocked (their mail goes to the quarantine from now on); nobody "
                "is emailed. A CLOSED ticket whose requester is blocked already: 200 with "
                "`changed: false`, nothing written",
                responses={"200": json_response("Marked", SPAM_MARKED), "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/blocked-senders",
        "blocked_senders",
        {
            "GET": Operation(
                ADMINS,
                "The blocked senders, newest first: addresses and @domains whose mail goes "
                "to the quarantine",
                responses={
                    "200": json_response("Every blocked sender", BLOCKED_SENDER_LIST),
                    "403": ERROR,
                },
            ),
            "POST": Operation(
                ADMINS,
                "Block an address or an @domain (which also blocks its subdomains); "
                "lower-cased. 409 when it is blocked already (`details.id` names it)",
                body=NEW_BLOCKED_SENDER,
                responses={
                    "201": json_response("Blocked", BLOCKED_SENDER_ENVELOPE),
                    "403": ERROR,
                    "409": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    # --- a customer's personal data (DESIGN.md section 13) ---
    Route(
        "/api/customers/{email}/export",
        "customer_export",
        {
            "GET": Operation(
                ADMINS,
                "Everything the desk holds about one customer (GDPR articles 15 and 20), as a "
                "zip: `manifest.json`, one `tickets/<pid>.json` per ticket they requested or "
                "took part in (the ticket, its messages, its timeline), their quarantined "
                "mail and their files. An address the desk knows nothing of gives an export "
                "with no tickets. Audited as CUSTOMER_EXPORTED, by a keyed hash of the address",
                responses={
                    "200": {"description": "The zip", "content": {"application/zip": {}}},
                    "403": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/customers/{email}/erase",
        "customer_erase",
        {
            "POST": Operation(
                ADMINS,
                "Erase one customer (GDPR article 17): on the tickets they requested, every "
                "message's text, every file and the subject; on others' tickets, their own "
                "messages and files and their participation; their name and address replaced "
                "by a placeholder everywhere (outbox, timelines, quarantine); an ERASED event "
                "on each ticket, with counts only. Irreversible; running it again is harmless "
                "(all zeros). Audited as CUSTOMER_ERASED, by a keyed hash of the address",
                responses={"200": json_response("Erased", ERASED), "403": ERROR, "422": ERROR},
            ),
        },
    ),
    Route(
        "/api/saved-replies",
        "saved_replies",
        {
            "GET": Operation(
                STAFF,
                "The saved replies the caller may use: the shared ones, then its own, by title",
                responses={"200": json_response("Every usable one", SAVED_REPLY_LIST)},
            ),
            "POST": Operation(
                STAFF,
                "Save a reply: `shared: true` (every staff member's; ADMIN and SUB_ADMIN "
                "only, 403 for an AGENT) or the caller's own. The body is a template of "
                "placeholders (`{{ customer.first_name }}`, see the README); one that does "
                "not compile, or uses what the language does not have (loops, calls, "
                "unknown names), is a 422 naming the line",
                body=NEW_SAVED_REPLY,
                responses={
                    "201": json_response("Saved", SAVED_REPLY_ENVELOPE),
                    "403": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/blocked-senders/{blocked_id:int}",
        "blocked_sender",
        {
            "DELETE": Operation(
                ADMINS,
                "Unblock: mail from it opens and threads into tickets again (what was kept in "
                "the quarantine stays there)",
                responses={"204": {"description": "Unblocked"}, "403": ERROR, "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/saved-replies/{reply_id:int}",
        "saved_reply",
        {
            "PATCH": Operation(
                STAFF,
                "Change a saved reply: a shared one (or making one shared) ADMIN and "
                "SUB_ADMIN only (403 for an AGENT); a personal one its owner only (another's "
                "is 404). Made personal, it becomes the caller's",
                body=SAVED_REPLY_CHANGE,
                responses={
                    "200": json_response("Changed", SAVED_REPLY_ENVELOPE),
                    "403": ERROR,
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
            "DELETE": Operation(
                STAFF,
                "Delete a saved reply (the same rules as changing it)",
                responses={"204": {"description": "Deleted"}, "403": ERROR, "404": ERROR},
            ),
        },
    ),
    Route(
        "/api/saved-replies/{reply_id:int}/render",
        "saved_reply_render",
        {
            "POST": Operation(
                STAFF,
                "A saved reply filled in for a ticket, in Jinja's sandbox: plain text for "
                "the reply box, and its files (to attach by their ids: `saved_reply_files` "
                "of POST /api/tickets/{pid}/messages). 404 for a reply the caller may not "
                "use or a ticket it may not see; 422 for a template that cannot be filled in "
                "or whose text would pass 50,000 characters",
                body=RENDER_SAVED_REPLY,
                responses={
                    "200": json_response("Filled in", SAVED_REPLY_TEXT),
                    "404": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/saved-replies/{reply_id:int}/files",
        "saved_reply_files",
        {
            "POST": Operation(
                STAFF,
                "Add files to a saved reply: multipart/form-data, the files under "
                "`attachments`, checked as a message's are (415 for a type refused or a body "
                "that is not multipart, 413 for a file past MAX_UPLOAD_BYTES, 422 for an "
                "empty file or none at all); a saved reply holds at most MAX_UPLOAD_FILES "
                "(413), since they all go on one message. Who may: whoever may change the "
                "saved reply (403 for a shared one to an AGENT; another's personal one is "
                "404)",
                request_body=SAVED_REPLY_UPLOAD,
                takes_files=True,
                responses={
                    "201": json_response(
                        "Added; the saved reply with its files", SAVED_REPLY_ENVELOPE
                    ),
                    "400": ERROR,
                    "403": ERROR,
                    "404": ERROR,
                    "413": ERROR,
                    "415": ERROR,
                    "422": ERROR,
                },
            ),
        },
    ),
    Route(
        "/api/saved-replies/{reply_id:int}/files/{file_id:int}",
        "saved_reply_file",
        {
            "GET": Operation(
                STAFF,
                "A saved reply's file, as a download (as GET /api/attachments/{id} serves "
                "one): whoever may use the saved reply; 404 otherwise, and for a file of "
                "another saved reply",
                responses={
                    "200": {
                        "description": "The file, served with the type its content was "
                        "checked to be",
                        "content": {"*/*": {}},
                    },
                    "302": {"description": "To a short-lived URL of the file (S3 storage)"},
                    "404": ERROR,
                },
            ),
            "DELETE": Operation(
                STAFF,
                "Remove a file from a saved reply (the same rules as changing it); a reply "
                "already sent with it keeps its own copy",
                responses={"204": {"description": "Removed"}, "403": ERROR, "404": ERROR},
            ),
        },
    ),
    # --- pages (server-rendered HTML; not part of the API document) ---
    page(
        "/",
        "public_form",
        takes_files=("POST",),
        GET=(ANYONE, "The public form to open a ticket"),
        POST=(ANYONE, "Open a ticket from the form"),
    ),
    page("/submitted", "submitted_page", GET=(ANYONE, "The confirmation with the ticket number")),
    Route(
        "/t/{pid}",
        "customer_ticket_page",
        {
            "GET": Operation(LINK, "The customer's view of their ticket", link="ticket"),
            "POST": Operation(
                LINK, "The customer's reply from that view", link="ticket", takes_files=True
            ),
        },
        in_api_doc=False,
    ),
    page("/tickets", "tickets_page", GET=(STAFF, "The ticket list")),
    page(
        "/tickets/new",
        "new_email_page",
        takes_files=("POST",),
        GET=(STAFF, "The New email form: write to a customer first"),
        POST=(STAFF, "Send it: the ticket opens, and its page follows"),
    ),
    page(
        "/tickets/{pid}",
        "ticket_page",
        GET=(STAFF, "One ticket"),
        POST=(STAFF, "Change status or priority from the page"),
    ),
    page(
        "/tickets/{pid}/messages",
        "ticket_reply_page",
        takes_files=("POST",),
        POST=(STAFF, "The reply box's form: a reply or an internal note"),
    ),
    page(
        "/tickets/{pid}/take",
        "ticket_take_page",
        POST=(STAFF, "The Take button: assign the ticket to oneself"),
    ),
    page(
        "/tickets/{pid}/merge",
        "ticket_merge_page",
        POST=(STAFF, "The Merge into… form: this ticket into the one named"),
    ),
    page(
        "/tickets/{pid}/messages/{message_id:int}/split",
        "message_split_page",
        POST=(STAFF, "The Split into a new ticket button of a customer's message"),
    ),
    page(
        "/tickets/{pid}/participants",
        "ticket_participants_page",
        POST=(STAFF, "The ticket page's form to copy someone on the ticket"),
    ),
    page(
        "/tickets/{pid}/participants/remove",
        "ticket_participant_remove_page",
        POST=(STAFF, "A participant's Remove button on the ticket page"),
    ),
    page(
        "/tickets/{pid}/follow",
        "ticket_follow_page",
        POST=(STAFF, "The Follow / Unfollow button (`follow`: yes or no)"),
    ),
    page(
        "/tickets/{pid}/assign",
        "ticket_assign_page",
        POST=(MANAGERS, "The assignment dialog's form"),
    ),
    page(
        "/tickets/{pid}/saved-reply",
        "ticket_saved_reply_page",
        # Its urlencoded form carries the reply typed so far: the text limit of a reply box.
        takes_files=("POST",),
        POST=(STAFF, "The reply box's Insert without JavaScript: the page, the reply filled in"),
    ),
    # The two forms carry a saved reply's body (up to 50,000 characters, escaped) and its
    # files: multipart, with the limit of a form that takes files.
    page(
        "/saved-replies",
        "saved_replies_page",
        takes_files=("POST",),
        GET=(STAFF, "The Saved replies page: shared ones and one's own; the form to add one"),
        POST=(STAFF, "Add a saved reply from the page"),
    ),
    page(
        "/saved-replies/{reply_id:int}",
        "saved_reply_edit_page",
        takes_files=("POST",),
        GET=(STAFF, "Edit a saved reply"),
        POST=(STAFF, "Save a saved reply"),
    ),
    page(
        "/saved-replies/{reply_id:int}/delete",
        "saved_reply_delete_page",
        POST=(STAFF, "Delete a saved reply from the page"),
    ),
    page(
        "/saved-replies/{reply_id:int}/files/{file_id:int}/delete",
        "saved_reply_file_delete_page",
        POST=(STAFF, "A file's Remove button on a saved reply's page"),
    ),
    page("/outbox", "outbox_page", GET=(ADMINS, "The Outbox: deliveries by status")),
    page(
        "/outbox/{outbox_id:int}/retry",
        "outbox_retry_page",
        POST=(ADMINS, "Retry a failed delivery from the Outbox page"),
    ),
    page("/audit", "audit_page", GET=(ADMINS, "The Audit log: who did what, filtered")),
    page("/quarantine", "quarantine_page", GET=(ADMINS, "The quarantine: emails with no sender")),
    page(
        "/quarantine/{quarantine_id:int}/ticket",
        "quarantine_ticket_page",
        POST=(ADMINS, "Open a ticket from a kept email, from the quarantine page"),
    ),
    page(
        "/quarantine/{quarantine_id:int}/discard",
        "quarantine_discard_page",
        POST=(ADMINS, "Discard a kept email from the quarantine page"),
    ),
    page(
        "/customer-data",
        "customer_data_page",
        GET=(ADMINS, "The Customer data page: export or erase one customer's data"),
    ),
    page(
        "/customer-data/export",
        "customer_data_export_page",
        GET=(ADMINS, "Download one customer's data (`email`) as a zip"),
    ),
    page(
        "/customer-data/erase",
        "customer_data_erase_page",
        POST=(ADMINS, "Erase one customer: asks to confirm, then erases (`email`, `confirm`)"),
    ),
    page(
        "/mailboxes/{mailbox_id:int}/oauth/start",
        "mailbox_oauth_start",
        GET=(ADMINS, "Connect a mailbox with OAuth 2.0: off to the provider's consent page"),
    ),
    page(
        "/oauth/callback",
        "oauth_callback",
        GET=(ADMINS, "Where the OAuth provider sends the ADMIN back: the mailbox is connected"),
    ),
    page(
        "/mailboxes",
        "mailboxes_page",
        GET=(ADMINS, "The Mailboxes page: status, last error, last fetch; the form to add one"),
        POST=(ADMINS, "Add a mailbox from the page"),
    ),
    page(
        "/mailboxes/{mailbox_id:int}",
        "mailbox_edit_page",
        GET=(ADMINS, "Edit a mailbox"),
        POST=(ADMINS, "Save a mailbox"),
    ),
    page(
        "/mailboxes/{mailbox_id:int}/delete",
        "mailbox_delete_page",
        POST=(ADMINS, "Delete a mailbox from the page (its mail stays)"),
    ),
    page(
        "/mailboxes/{mailbox_id:int}/test",
        "mailbox_test_page",
        POST=(ADMINS, "Test a mailbox's connection from the page"),
    ),
    page(
        "/webhooks",
        "webhooks_page",
        GET=(ADMINS, "The outgoing webhooks and their recent deliveries"),
        POST=(ADMINS, "Register a webhook from the page"),
    ),
    page(
        "/webhooks/{webhook_id:int}/delete",
        "webhook_delete_page",
        POST=(ADMINS, "Remove a webhook from the page"),
    ),
    page(
        "/webhooks/deliveries/{delivery_id:int}/retry",
        "webhook_retry_page",
        POST=(ADMINS, "Retry a DEAD webhook delivery from the page"),
    ),
    page(
        "/dev/mailbox",
        "mailbox_page",
        dev_only=True,
        GET=(ANYONE, "What the development mailbox received"),
    ),
    page(
        "/dev/mailbox/{name}",
        "mail_page",
        dev_only=True,
        GET=(ANYONE, "One message of the development mailbox"),
    ),
    page(
        "/login",
        "login_page",
        GET=(ANYONE, "The login form"),
        POST=(ANYONE, "Log in from the form"),
    ),
    page("/login/2fa", "login_code_page", POST=(ANYONE, "The login form's code step")),
    page("/logout", "logout_page", POST=(ENROLLING, "Log out from the page")),
    page(
        "/account/two-factor",
        "two_factor_page",
        GET=(ENROLLING, "One's two-factor: its state, enrolment, turning it off"),
        POST=(ENROLLING, "Start enrolling: the QR code and the secret, and the confirm form"),
    ),
    page(
        "/account/two-factor/confirm",
        "two_factor_confirm_page",
        POST=(ENROLLING, "Confirm enrolment with a code: the recovery codes, shown once"),
    ),
    page(
        "/account/two-factor/disable",
        "two_factor_off_page",
        POST=(STAFF, "Turn one's two-factor off with the password and a code"),
    ),
    page(
        "/users/{user_id:int}/two-factor/reset",
        "user_two_factor_reset_page",
        POST=(ADMINS, "Reset a staff member's two-factor from their page"),
    ),
    page(
        "/account/password",
        "password_page",
        GET=(STAFF, "The form to change one's own password"),
        POST=(STAFF, "Change one's own password"),
    ),
    page(
        "/password-reset",
        "password_forgot_page",
        GET=(ANYONE, "Forgot your password? The form that asks for a reset link"),
        POST=(ANYONE, "Ask for a reset link from the form (the same answer for any address)"),
    ),
    page(
        "/password-reset/confirm",
        "password_set_page",
        GET=(ANYONE, "What a reset link opens: the form for the new password"),
        POST=(ANYONE, "Set the new password from the form"),
    ),
    page(
        "/account/tokens",
        "api_tokens_page",
        GET=(STAFF, "One's API tokens, with the form to make one"),
        POST=(STAFF, "Make an API token from the page (shown once, in the answer)"),
    ),
    page(
        "/account/tokens/{token_id:int}/revoke",
        "api_token_revoke_page",
        POST=(STAFF, "Revoke one of one's API tokens from the page"),
    ),
    page(
        "/account/notifications",
        "notifications_page",
        GET=(STAFF, "The form of what one is emailed"),
        POST=(STAFF, "Save what one is emailed"),
    ),
    page(
        "/users",
        "users_page",
        GET=(MANAGERS, "The staff page"),
        POST=(MANAGERS, "Add a staff member from the page"),
    ),
    page(
        "/users/{user_id:int}",
        "user_page",
        GET=(MANAGERS, "Edit a staff member"),
        POST=(MANAGERS, "Save a staff member"),
    ),
    # --- bulk actions, spam and blocked senders (DESIGN.md section 12) ---
    page("/tickets/bulk", "tickets_bulk_page", POST=(STAFF, "The list page's bulk form")),
    page("/tickets/{pid}/spam", "ticket_spam_page", POST=(STAFF, "The Mark as spam button")),
    page(
        "/blocked-senders",
        "blocked_senders_page",
        GET=(ADMINS, "The blocked senders, with the form to add one"),
        POST=(ADMINS, "Block an address or @domain from the page"),
    ),
    page(
        "/blocked-senders/{blocked_id:int}/delete",
        "blocked_sender_delete_page",
        POST=(ADMINS, "Unblock from the page"),
    ),
)


def served_routes(development: bool, routes: tuple[Route, ...] = ROUTES) -> tuple[Route, ...]:
    """The routes an app serves: the development-only ones only in development."""
    return tuple(r for r in routes if development or not r.dev_only)


def file_routes(routes: tuple[Route, ...] = ROUTES) -> frozenset[tuple[str, str]]:
    """(URI template, method) of the operations that take files."""
    return frozenset(
        (r.path, m) for r in routes for m, op in r.operations.items() if op.takes_files
    )


def link_table(routes: tuple[Route, ...] = ROUTES) -> dict[tuple[str, str], str]:
    """(URI template, method) -> the purpose of the signed links that open it."""
    return {(r.path, m): op.link for r in routes for m, op in r.operations.items() if op.link}


def access_table(routes: tuple[Route, ...] = ROUTES) -> dict[tuple[str, str], str]:
    """(URI template, method) -> who may call it: what the auth middleware enforces."""
    return {(r.path, m): op.who for r in routes for m, op in r.operations.items()}
