"""The closed sets of values: one tuple per database enum (DESIGN.md section 3), their labels
for people, the field limits, the one rule of who counts as a manager, and the shape of a
ticket number.

`tests/sql/test_schema.py` checks every tuple here against its enum in the database, so a
value added to one and not the other fails the suite, not a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

# Each tuple is its enum, in the enum's order.
ROLES = ("ADMIN", "SUB_ADMIN", "AGENT")
STATUSES = ("OPEN", "IN_PROGRESS", "WAITING", "RESOLVED", "CLOSED")
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")
AUTHORS = ("CUSTOMER", "STAFF", "SYSTEM")
VISIBILITIES = ("PUBLIC", "INTERNAL")
CHANNELS = ("WEB", "EMAIL", "API")
EVENT_TYPES = (
    "CREATED",
    "ASSIGNED",
    "UNASSIGNED",
    "STATUS_CHANGED",
    "PRIORITY_CHANGED",
    "MESSAGE_ADDED",
    "NOTE_ADDED",
    "ATTACHMENT_ADDED",
    "EMAIL_QUEUED",
    "EMAIL_SENT",
    "EMAIL_FAILED",
    "EMAIL_RECEIVED",
    "PARTICIPANT_ADDED",
    "PARTICIPANT_REMOVED",
    "MERGED_INTO",
    "MERGED_FROM",
    "SPLIT_TO",
    "SPLIT_FROM",
    "SPAM",
    "AUTO_CLOSED",
    "ERASED",
    "WAITING_UNTIL_SET",
)
# What the audit log records (DESIGN.md section 13; accounts/audit.py).
AUDIT_ACTIONS = (
    "LOGIN",
    "LOGIN_FAILED",
    "LOGOUT",
    "TWO_FACTOR_ENABLED",
    "TWO_FACTOR_DISABLED",
    "TWO_FACTOR_RESET",
    "RECOVERY_CODE_USED",
    "PASSWORD_CHANGED",
    "PASSWORD_RESET_REQUESTED",
    "PASSWORD_RESET",
    "USER_CREATED",
    "ROLE_CHANGED",
    "USER_ACTIVATED",
    "USER_DEACTIVATED",
    "TOKEN_CREATED",
    "TOKEN_REVOKED",
    "MAILBOX_CREATED",
    "MAILBOX_UPDATED",
    "MAILBOX_DELETED",
    "MAILBOX_AUTHORIZED",
    "WEBHOOK_CREATED",
    "WEBHOOK_UPDATED",
    "WEBHOOK_DELETED",
    "CUSTOMER_EXPORTED",
    "CUSTOMER_ERASED",
    "TICKETS_PURGED",
)
OUTBOX_STATUSES = ("PENDING", "SENDING", "SENT", "FAILED", "DEAD")
# What an outgoing webhook may ask to be told of (DESIGN.md section 13; supportdesk.webhooks).
# Its deliveries go through the statuses of OUTBOX_STATUSES.
WEBHOOK_EVENTS = ("ticket.created", "message.created", "ticket.status_changed", "ticket.assigned")
# The company's own mailboxes (DESIGN.md section 10). NONE (plain text) is for development.
MAIL_SECURITIES = ("SSL", "STARTTLS", "NONE")
MAILBOX_AUTHS = ("PASSWORD", "OAUTH2")
OAUTH_PROVIDERS = ("MICROSOFT", "GOOGLE", "CUSTOM")
MAILBOX_STATUSES = ("NEW", "OK", "ERROR", "REAUTHORIZE")
# DMARC alignment of an inbound message's sender: pass, fail, or nothing to judge it by.
SENDER_AUTHS = ("pass", "fail", "none")
# Each kind of email (the enum's order) and whom it goes to: ACKNOWLEDGEMENT, REPLY and
# CLOSE_NOTICE (the scheduler closed a RESOLVED ticket) to the customer, forming the email
# thread; ASSIGNMENT and NOTICE to staff. The audience
# decides the signed token an email carries (thread_tokens), so a kind is added here with
# its audience or not at all.
Audience = Literal["CUSTOMER", "STAFF"]
EMAIL_KIND_AUDIENCES: Mapping[str, Audience] = {
    "ACKNOWLEDGEMENT": "CUSTOMER",
    "REPLY": "CUSTOMER",
    "ASSIGNMENT": "STAFF",
    "NOTICE": "STAFF",
    "CLOSE_NOTICE": "CUSTOMER",
    # A password-reset link (DESIGN.md section 13), to a staff member, outside any ticket.
    "PASSWORD_RESET": "STAFF",
}
EMAIL_KINDS = tuple(EMAIL_KIND_AUDIENCES)

# The database enum behind each tuple (the schema test walks this).
ENUMS: Mapping[str, tuple[str, ...]] = {
    "user_role": ROLES,
    "ticket_status": STATUSES,
    "ticket_priority": PRIORITIES,
    "message_author": AUTHORS,
    "message_visibility": VISIBILITIES,
    "message_channel": CHANNELS,
    "ticket_event_type": EVENT_TYPES,
    "outbox_status": OUTBOX_STATUSES,
    "email_kind": EMAIL_KINDS,
    "mail_security": MAIL_SECURITIES,
    "mailbox_auth": MAILBOX_AUTHS,
    "oauth_provider": OAUTH_PROVIDERS,
    "mailbox_status": MAILBOX_STATUSES,
    "sender_auth": SENDER_AUTHS,
    "audit_action": AUDIT_ACTIONS,
    "webhook_event": WEBHOOK_EVENTS,
}

# Field limits, each written here once: the checks (core.fields declarations), the OpenAPI
# document (generated from them), the pages' maxlength and the inbound mail's cuts read
# these. The CHECK constraints of migrations/ say the same of the columns they bound
# (tests/sql/test_schema.py compares them).
MAX_NAME = 200  # a person's name: a staff member, a requester
MAX_EMAIL = 254  # an email address (RFC 5321's longest path, less its angle brackets)
MAX_SUBJECT = 255  # a ticket's subject
MAX_BODY = 50_000  # a message's text (an email's longer text is cut and attached whole)
MAX_FILENAME = 255  # an attachment's shown name
MAX_TITLE = 200  # a saved reply's title
MAX_HOST = 253  # a host name (RFC 1035's longest)
MAX_SEARCH = 200  # a search of the ticket list
MAX_URL = 2000  # an outgoing webhook's target URL
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further: longer is refused, never truncated
MAX_TOKEN_NAME = 100  # an API token's name (DESIGN.md section 13)

ROLE_LABELS = {"ADMIN": "Admin", "SUB_ADMIN": "Sub-admin", "AGENT": "Agent"}
STATUS_LABELS = {
    "OPEN": "Open",
    "IN_PROGRESS": "In progress",
    "WAITING": "Waiting",
    "RESOLVED": "Resolved",
    "CLOSED": "Closed",
}
PRIORITY_LABELS = {"LOW": "Low", "NORMAL": "Normal", "HIGH": "High", "URGENT": "Urgent"}
CHANNEL_LABELS = {"WEB": "the web form", "EMAIL": "email", "API": "the API"}
OUTBOX_STATUS_LABELS = {
    "PENDING": "Pending",
    "SENDING": "Sending",
    "SENT": "Sent",
    "FAILED": "Retrying",
    "DEAD": "Failed",
}

EMAIL_KIND_LABELS = {
    "ACKNOWLEDGEMENT": "acknowledgement",
    "REPLY": "reply",
    "ASSIGNMENT": "assignment notice",
    "NOTICE": "notice",
    "CLOSE_NOTICE": "closing notice",
    "PASSWORD_RESET": "password reset",
}
# The audit log's actions as its page and `GET /api/audit` (`label`) name them: one for each
# of AUDIT_ACTIONS (tests/core/test_vocabulary.py holds the two together).
AUDIT_ACTION_LABELS = {
    "LOGIN": "Logged in",
    "LOGIN_FAILED": "Failed login",
    "LOGOUT": "Logged out",
    "TWO_FACTOR_ENABLED": "Two-factor turned on",
    "TWO_FACTOR_DISABLED": "Two-factor turned off",
    "TWO_FACTOR_RESET": "Two-factor reset by an admin",
    "RECOVERY_CODE_USED": "Recovery code used",
    "PASSWORD_CHANGED": "Password changed",
    "PASSWORD_RESET_REQUESTED": "Password reset requested",
    "PASSWORD_RESET": "Password reset by email",
    "USER_CREATED": "Staff member added",
    "ROLE_CHANGED": "Role changed",
    "USER_ACTIVATED": "Staff member activated",
    "USER_DEACTIVATED": "Staff member deactivated",
    "TOKEN_CREATED": "API token created",
    "TOKEN_REVOKED": "API token revoked",
    "MAILBOX_CREATED": "Mailbox added",
    "MAILBOX_UPDATED": "Mailbox changed",
    "MAILBOX_DELETED": "Mailbox deleted",
    "MAILBOX_AUTHORIZED": "Mailbox connected (OAuth)",
    "WEBHOOK_CREATED": "Webhook added",
    "WEBHOOK_UPDATED": "Webhook changed",
    "WEBHOOK_DELETED": "Webhook deleted",
    "CUSTOMER_EXPORTED": "Customer data exported",
    "CUSTOMER_ERASED": "Customer data erased",
    "TICKETS_PURGED": "Old tickets purged",
}

MANAGER_ROLES = frozenset({"ADMIN", "SUB_ADMIN"})


def is_manager(user: Mapping[str, Any] | None) -> bool:
    """ADMIN and SUB_ADMIN: they see every ticket and assign them."""
    return user is not None and user["role"] in MANAGER_ROLES


# A ticket number (PID, DESIGN.md section 4): the UTC year and month of creation, a dash, and
# that month's counter in at least five digits (`202611-00042`, `202611-100000`). The
# pattern is written here once; every form of it below, and the tokens in our email
# addresses (thread_tokens), are built from it. The database's CHECK on tickets.pid
# (migrations, in SQL) says the same: tests/sql/test_schema.py holds the two together.
PID_PATTERN = r"[0-9]{4}(?:0[1-9]|1[0-2])-[0-9]{5,}"
# The same as a JSON Schema `pattern` (OpenAPI): ECMA-262 syntax, which searches the string,
# so the anchors make it the whole value.
PID_JSON_PATTERN = f"^{PID_PATTERN}$"
# The tag every ticket email has in its subject, `[#202611-00042]`: written by pid_tag,
# found in a reply's subject by this (group 1 is the PID).
PID_IN_SUBJECT = re.compile(rf"\[#({PID_PATTERN})\]")
_PID = re.compile(PID_PATTERN)


def is_pid(text: str) -> bool:
    """Whether `text` is a ticket number, whole: nothing before or after it."""
    return _PID.fullmatch(text) is not None


def pid_tag(pid: str) -> str:
    """`[#202611-00042]`, the subject tag that PID_IN_SUBJECT finds."""
    return f"[#{pid}]"
