"""The JSON Schemas of the API's answers, and the request bodies as the document carries them.

`supportdesk/web/routes.py` refers to them per operation; the OpenAPI document publishes them
under components/schemas. What a request may hold is declared with its check, in its domain
(`core.fields` declarations in `tickets.inputs`, `accounts`, `mail.outbound.deliveries`):
`request_body` only wraps such a declaration for the document. The enums come from
`supportdesk.core.vocabulary`, so the document cannot offer a value the database refuses.
"""

from __future__ import annotations

from typing import Any

from supportdesk.core.fields import Body
from supportdesk.core.vocabulary import (
    AUDIT_ACTIONS,
    AUTHORS,
    CHANNELS,
    EMAIL_KINDS,
    EVENT_TYPES,
    OUTBOX_STATUSES,
    PID_JSON_PATTERN,
    PRIORITIES,
    ROLES,
    SENDER_AUTHS,
    STATUSES,
    VISIBILITIES,
    WEBHOOK_EVENTS,
)
from supportdesk.files.uploads import MAX_IMAGE_PIXELS
from supportdesk.mail.inbound.sender_auth.verdicts import DMARC_FIELD


def request_body(body: Body, takes_files: bool, others: tuple[Body, ...] = ()) -> dict[str, Any]:
    """A body of declared fields as JSON (one of several, with `others`); where the
    operation takes files, as multipart/form-data too, with the same fields and the files
    under `attachments`."""
    refs = [ref(b.name) for b in (body, *others)]
    schema = {"oneOf": refs} if others else refs[0]
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if takes_files:
        content["multipart/form-data"] = {"schema": {"allOf": [schema], **ATTACHMENTS}}
    return {"required": True, "content": content}


ATTACHMENTS = {
    "properties": {
        "attachments": {
            "type": "array",
            "items": {"type": "string", "contentMediaType": "application/octet-stream"},
            "description": "files (images of at most "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels, PDF, text, CSV, office "
            "documents, zip; never HTML, SVG or scripts, whatever their name); at most "
            "MAX_UPLOAD_FILES, each at most MAX_UPLOAD_BYTES",
        }
    },
}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR = {"$ref": "#/components/responses/Error"}

HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "checks", "email", "mailboxes"],
    "properties": {
        "status": {"type": "string", "enum": ["ok"]},
        "checks": {
            "type": "object",
            "properties": {"postgres": {"type": "string"}, "redis": {"type": "string"}},
        },
        "email": {
            "description": "the outbox and its workers; null if it could not be read",
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "oldest_pending_seconds": {
                            "type": ["number", "null"],
                            "description": "age of the oldest email waiting to be sent",
                        },
                        "undelivered": {"type": "integer"},
                        "dead": {"type": "integer", "description": "gave up; see /outbox"},
                        "queued": {"type": "integer"},
                        "retrying": {"type": "integer"},
                        "workers_alive": {"type": "integer"},
                        "worker": {"type": "string", "enum": ["ok", "none alive"]},
                    },
                },
            ],
        },
        "mailboxes": {
            "description": "company mailboxes needing an ADMIN; null if it could not be read",
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "reauthorize": {
                            "type": "array",
                            "description": "OAuth mailboxes to connect again (fetching paused)",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "integer"},
                                    "address": {"type": "string"},
                                    "since": {"type": "string", "format": "date-time"},
                                },
                            },
                        },
                    },
                },
            ],
        },
    },
}

# Schemas referenced by the operations, published under components/schemas.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Mailbox": {
        "type": "object",
        "description": "A company mailbox (DESIGN.md section 10); secrets are never returned, "
        "only whether they are set",
        "required": ["id", "address", "status", "has_password", "is_active"],
        "properties": {
            "id": {"type": "integer"},
            "address": {"type": "string"},
            "display_name": {"type": "string"},
            "imap_host": {"type": "string"},
            "imap_port": {"type": "integer"},
            "imap_security": {"type": "string", "enum": ["SSL", "STARTTLS", "NONE"]},
            "imap_folder": {"type": "string"},
            "auth": {"type": "string", "enum": ["PASSWORD", "OAUTH2"]},
            "username": {"type": "string"},
            "oauth_provider": {"type": ["string", "null"]},
            "smtp_host": {"type": ["string", "null"]},
            "smtp_port": {"type": ["integer", "null"]},
            "smtp_security": {"type": ["string", "null"]},
            "smtp_username": {"type": ["string", "null"]},
            "processed": {"type": "string"},
            "backfill_days": {"type": "integer"},
            "trusted_authserv_ids": {"type": "array", "items": {"type": "string"}},
            "is_active": {"type": "boolean"},
            "status": {"type": "string", "enum": ["NEW", "OK", "ERROR", "REAUTHORIZE"]},
            "last_error": {"type": ["string", "null"]},
            "last_fetch_at": {"type": ["string", "null"], "format": "date-time"},
            "uidvalidity": {"type": ["integer", "null"]},
            "last_uid": {"type": "integer"},
            "backfilled_at": {"type": ["string", "null"], "format": "date-time"},
            "has_password": {"type": "boolean"},
            "has_smtp_password": {"type": "boolean"},
            "oauth_connected": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "User": {
        "type": "object",
        "required": ["id", "email", "name", "role", "is_active", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string", "format": "email"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": list(ROLES)},
            "is_active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "Session": {
        "type": "object",
        "required": ["token", "token_type", "expires_at", "csrf_token", "user"],
        "properties": {
            "token": {"type": "string", "description": "send as `Authorization: Bearer`"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_at": {"type": "string", "format": "date-time"},
            "csrf_token": {
                "type": "string",
                "description": "send as X-CSRF-Token with cookie-authenticated writes",
            },
            "user": ref("User"),
            "must_enrol": {
                "type": "boolean",
                "description": "REQUIRE_2FA_FOR covers this account and it has no two-factor "
                "yet: until it enrols (POST /api/me/2fa), every other staff route answers 403 "
                "two_factor_enrolment_required",
            },
        },
    },
}

SCHEMAS.update(
    {
        "Person": {
            "type": "object",
            "required": ["id", "name"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        },
        "Ticket": {
            "type": "object",
            "required": [
                "pid",
                "subject",
                "status",
                "priority",
                "requester",
                "assigned_to",
                "created_at",
                "updated_at",
            ],
            "properties": {
                "pid": {
                    "type": "string",
                    "pattern": PID_JSON_PATTERN,
                    "examples": ["202611-00042"],
                },
                "subject": {"type": "string"},
                "status": {"type": "string", "enum": list(STATUSES)},
                "priority": {"type": "string", "enum": list(PRIORITIES)},
                "mailbox_id": {
                    "type": ["integer", "null"],
                    "description": "the company mailbox it came in on; null: MAIL_FROM's",
                },
                "requester": {
                    "type": "object",
                    "required": ["email", "name"],
                    "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
                },
                "assigned_to": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "required": ["id", "name", "email"],
                            "properties": {
                                "id": {"type": "integer"},
                                "name": {"type": "string"},
                                "email": {"type": "string"},
                            },
                        },
                    ],
                },
                "waiting_until": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "a WAITING ticket returns to OPEN at this moment "
                    "(the scheduler); null: no such moment",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            },
        },
        "Event": {
            "type": "object",
            "required": ["id", "type", "actor", "data", "summary", "created_at"],
            "properties": {
                "id": {"type": "integer"},
                "type": {
                    "type": "string",
                    "enum": list(EVENT_TYPES),
                },
                "actor": {"oneOf": [{"type": "null"}, ref("Person")]},
                "data": {
                    "type": "object",
                    "description": "ASSIGNED: {from, to} people; STATUS_CHANGED and "
                    "PRIORITY_CHANGED: {from, to} values; UNASSIGNED: {from}; "
                    "PARTICIPANT_ADDED and PARTICIPANT_REMOVED: {email, name}",
                },
                "summary": {"type": "string", "examples": ["Ana assigned this to Bo"]},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
    }
)

SCHEMAS.update(
    {
        "Attachment": {
            "type": "object",
            "required": ["id", "filename", "content_type", "size"],
            "properties": {
                "id": {"type": "integer"},
                "filename": {"type": "string"},
                "content_type": {"type": "string"},
                "size": {"type": "integer", "description": "bytes"},
            },
        },
        "Message": {
            "type": "object",
            "required": [
                "id",
                "author",
                "author_name",
                "author_email",
                "visibility",
                "channel",
                "body",
                "full_body",
                "matched_by_subject_only",
                "sender_auth",
                "html_available",
                "created_at",
                "attachments",
            ],
            "properties": {
                "id": {"type": "integer"},
                "author": {"type": "string", "enum": list(AUTHORS)},
                "author_name": {"type": "string"},
                "author_email": {"type": ["string", "null"]},
                "visibility": {
                    "type": "string",
                    "enum": list(VISIBILITIES),
                    "description": "INTERNAL: a note among staff, never emailed",
                },
                "channel": {"type": "string", "enum": list(CHANNELS)},
                "body": {"type": "string"},
                "full_body": {
                    "type": ["string", "null"],
                    "description": "an email's whole text as received (quoted history and "
                    "signature included), when it differs from `body`, which is trimmed",
                },
                "matched_by_subject_only": {
                    "type": "boolean",
                    "description": "an email that joined this ticket by the [#PID] in its "
                    "subject alone, with no reply header or token of ours: maybe not from "
                    "the customer, so it reopened nothing and notified nobody",
                },
                "sender_auth": {
                    "type": "string",
                    "enum": list(SENDER_AUTHS),
                    "description": "whether DMARC authenticated the email's From domain: "
                    "pass (a verified sender), fail (unverified: it opened its own ticket, "
                    "threaded into none and reopened none), none (not an email, or nothing "
                    "to judge it by)",
                },
                "html_available": {
                    "type": "boolean",
                    "description": "an HTML email whose HTML is kept, sanitized: "
                    "GET /api/tickets/{pid}/messages/{id}/original serves it for a sandboxed "
                    "frame",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "attachments": {"type": "array", "items": ref("Attachment")},
            },
        },
    }
)

MESSAGE_POSTED = {
    "type": "object",
    "required": ["message", "ticket", "newer_messages"],
    "properties": {
        "message": ref("Message"),
        "ticket": ref("Ticket"),
        "newer_messages": {
            "type": "integer",
            "description": "messages that arrived after last_seen_message_id (0 without it)",
        },
    },
}

SCHEMAS["Delivery"] = {
    "type": "object",
    "required": ["id", "ticket", "kind", "to", "subject", "status", "attempts", "last_error"],
    "properties": {
        "id": {"type": "integer"},
        "ticket": {"type": ["string", "null"], "description": "the ticket's PID"},
        "kind": {"type": "string", "enum": list(EMAIL_KINDS)},
        "to": {"type": "string"},
        "subject": {"type": "string"},
        "status": {
            "type": "string",
            "enum": list(OUTBOX_STATUSES),
            "description": "FAILED: an attempt failed and another is due; DEAD: no more "
            "attempts (an admin may retry)",
        },
        "attempts": {"type": "integer"},
        "last_error": {"type": ["string", "null"]},
        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "message_id": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

DELIVERY_ENVELOPE = {
    "type": "object",
    "required": ["delivery"],
    "properties": {"delivery": ref("Delivery")},
}

DELIVERY_PAGE = {
    "type": "object",
    "required": ["items", "page", "per_page", "total", "total_capped", "counts"],
    "properties": {
        "items": {"type": "array", "items": ref("Delivery")},
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "total": {"type": "integer"},
        "total_capped": {"type": "boolean"},
        "counts": {
            "type": "object",
            "properties": {status: {"type": "integer"} for status in OUTBOX_STATUSES},
        },
    },
}

MERGED = {
    "type": "object",
    "required": ["ticket", "merged"],
    "properties": {
        "ticket": {**ref("Ticket"), "description": "the target, which received the source"},
        "merged": {**ref("Ticket"), "description": "the source, now CLOSED and merged"},
    },
}

SPLIT = {
    "type": "object",
    "required": ["ticket", "source"],
    "properties": {
        "ticket": {**ref("Ticket"), "description": "the new ticket"},
        "source": {**ref("Ticket"), "description": "the ticket the message came from"},
    },
}

TICKET_ENVELOPE = {
    "type": "object",
    "required": ["ticket"],
    "properties": {"ticket": ref("Ticket")},
}

SCHEMAS["Participant"] = {
    "type": "object",
    "description": "Someone copied on a ticket besides its requester (DESIGN.md section 11)",
    "required": ["email", "name", "added_by", "added_at"],
    "properties": {
        "email": {"type": "string", "description": "lower-cased"},
        "name": {"type": "string", "description": "as their email or staff gave it; maybe empty"},
        "added_by": {
            "type": ["integer", "null"],
            "description": "the staff member who copied them; null: copied by an email",
        },
        "added_at": {"type": "string", "format": "date-time"},
    },
}
PARTICIPANT_ENVELOPE = {
    "type": "object",
    "required": ["participant"],
    "properties": {"participant": ref("Participant")},
}
PARTICIPANT_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("Participant")}},
}
TICKET_DETAIL = {
    "type": "object",
    "required": ["ticket", "participants"],
    "properties": {
        "ticket": ref("Ticket"),
        "participants": {"type": "array", "items": ref("Participant")},
    },
}


def query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


USER_ENVELOPE = {"type": "object", "required": ["user"], "properties": {"user": ref("User")}}
MAILBOX_ENVELOPE = {
    "type": "object",
    "required": ["mailbox"],
    "properties": {"mailbox": ref("Mailbox")},
}
MAILBOX_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("Mailbox")}},
}
MAILBOX_TESTED = {
    "type": "object",
    "description": "What the server showed when the folder was selected",
    "required": ["folder", "uidvalidity", "uidnext", "messages", "idle", "move"],
    "properties": {
        "folder": {"type": "string"},
        "uidvalidity": {"type": "integer"},
        "uidnext": {"type": "integer"},
        "messages": {"type": "integer"},
        "idle": {"type": "boolean", "description": "the server has IMAP IDLE"},
        "move": {"type": "boolean", "description": "the server has IMAP MOVE"},
    },
}

# --- outgoing webhooks (DESIGN.md section 13) ---
SCHEMAS["Webhook"] = {
    "type": "object",
    "description": "An outgoing webhook; its signing secret is never returned",
    "required": ["id", "url", "events", "active", "dead", "undelivered", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string", "enum": list(WEBHOOK_EVENTS)}},
        "active": {"type": "boolean", "description": "false: no deliveries are queued"},
        "dead": {"type": "integer", "description": "deliveries that gave up (list only)"},
        "undelivered": {"type": "integer", "description": "deliveries waiting (list only)"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
SCHEMAS["WebhookDelivery"] = {
    "type": "object",
    "required": ["id", "webhook_id", "event", "ticket", "status", "attempts", "created_at"],
    "properties": {
        "id": {"type": "integer", "description": "also the payload's `id`"},
        "webhook_id": {"type": "integer"},
        "event": {"type": "string", "enum": list(WEBHOOK_EVENTS)},
        "ticket": {"type": ["string", "null"], "description": "the ticket's PID"},
        "status": {
            "type": "string",
            "enum": list(OUTBOX_STATUSES),
            "description": "SENT: a 2xx answer; FAILED: another attempt is due; DEAD: no "
            "more attempts (an ADMIN may retry)",
        },
        "attempts": {"type": "integer"},
        "last_error": {"type": ["string", "null"]},
        "response_status": {
            "type": ["integer", "null"],
            "description": "the receiver's HTTP status at the last attempt",
        },
        "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "last_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
WEBHOOK_ENVELOPE = {
    "type": "object",
    "required": ["webhook"],
    "properties": {"webhook": ref("Webhook")},
}
WEBHOOK_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("Webhook")}},
}
WEBHOOK_DELIVERY_ENVELOPE = {
    "type": "object",
    "required": ["delivery"],
    "properties": {"delivery": ref("WebhookDelivery")},
}
WEBHOOK_DELIVERY_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("WebhookDelivery")}},
}


def header_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


# Read by mail.inbound.parse (parse_json), which requires `message_id` alone: mail may come
# with no subject and no To (a Bcc), and with no usable sender (it is kept in the quarantine).
SCHEMAS["InboundEmail"] = {
    "type": "object",
    "required": ["message_id"],
    "additionalProperties": False,
    "properties": {
        "from": {
            "type": "string",
            "examples": ["Cleo <cleo@example.org>"],
            "description": "the From header; when it holds no address, Reply-To, Sender and "
            "Return-Path in `headers` are read, and with none the email is quarantined",
        },
        "to": {"type": "string"},
        "cc": {"type": "string"},
        "subject": {"type": "string"},
        "text": {"type": "string"},
        "html": {"type": "string", "description": "used when there is no text"},
        "message_id": {"type": "string", "examples": ["<CAF12@mail.example.org>"]},
        "in_reply_to": {"type": "string"},
        "references": {"type": "string"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Auto-Submitted, Precedence, List-*... (loop protection)",
        },
        DMARC_FIELD.name: DMARC_FIELD.schema() | {"description": DMARC_FIELD.description},
        "attachments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["filename", "content_base64"],
                "properties": {
                    "filename": {"type": "string"},
                    "content_type": {"type": "string"},
                    "content_base64": {"type": "string"},
                },
            },
        },
    },
}

RECEIVED = {
    "type": "object",
    "required": ["outcome", "ticket", "message_id", "acknowledged", "quarantine"],
    "properties": {
        "outcome": {
            "type": "string",
            "enum": ["created", "threaded", "duplicate", "quarantined"],
            "description": "quarantined: no usable sender address; kept for an ADMIN, no ticket",
        },
        "ticket": {"type": ["string", "null"], "description": "the ticket's PID"},
        "message_id": {"type": ["integer", "null"]},
        "quarantine": {
            "type": ["object", "null"],
            "description": "where the email is kept when it opened no ticket",
            "required": ["id", "reason"],
            "properties": {"id": {"type": "integer"}, "reason": {"type": "string"}},
        },
        "acknowledged": {"type": "boolean"},
        "automatic": {
            "type": ["string", "null"],
            "description": "why it was taken for a machine's (never answered)",
        },
    },
}

SCHEMAS["QuarantinedEmail"] = {
    "type": "object",
    "required": ["id", "received_at", "from", "subject", "reason"],
    "properties": {
        "id": {"type": "integer"},
        "received_at": {"type": "string", "format": "date-time"},
        "from": {"type": "string", "description": "the From header as it came (maybe garbage)"},
        "subject": {"type": "string"},
        "reason": {"type": "string", "description": "why it opened no ticket"},
    },
}

QUARANTINE_PAGE = {
    "type": "object",
    "required": ["items", "page", "per_page", "total", "total_capped"],
    "properties": {
        "items": {"type": "array", "items": ref("QuarantinedEmail")},
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "total": {"type": "integer"},
        "total_capped": {"type": "boolean"},
    },
}

# --- bulk actions and spam (DESIGN.md section 12) ---------------------------------------------

SCHEMAS["BulkResult"] = {
    "type": "object",
    "required": ["pid", "outcome"],
    "description": "One ticket's result. `not_found`: no such ticket, or one the caller may "
    "not see (alike, and nothing more is said); `invalid`: the action does not apply to it "
    "(`error` says why); `conflict`: it changed under the action; `failed`: a database "
    "failure on this ticket alone (it is unchanged; try again).",
    "properties": {
        "pid": {"type": "string"},
        "outcome": {
            "type": "string",
            "enum": ["changed", "unchanged", "not_found", "invalid", "conflict", "failed"],
        },
        "ticket": ref("Ticket"),
        "error": {"type": "string"},
    },
}
BULK_RESULTS = {
    "type": "object",
    "required": ["results"],
    "properties": {"results": {"type": "array", "items": ref("BulkResult")}},
}
SPAM_MARKED = {
    "type": "object",
    "required": ["ticket", "changed"],
    "properties": {"ticket": ref("Ticket"), "changed": {"type": "boolean"}},
}
SCHEMAS["BlockedSender"] = {
    "type": "object",
    "required": ["id", "pattern", "created_by", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "pattern": {"type": "string", "description": "an address, or @domain"},
        "created_by": {"oneOf": [ref("Person"), {"type": "null"}]},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
BLOCKED_SENDER_ENVELOPE = {
    "type": "object",
    "required": ["blocked_sender"],
    "properties": {"blocked_sender": ref("BlockedSender")},
}
BLOCKED_SENDER_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("BlockedSender")}},
}


# --- saved replies (DESIGN.md section 12) ---
SCHEMAS["SavedReply"] = {
    "type": "object",
    "description": "A saved reply: shared (owner_id null) or the caller's own",
    "required": ["id", "title", "body", "shared", "owner_id", "created_by", "created_at", "files"],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "body": {"type": "string", "description": "the template, as saved"},
        "shared": {"type": "boolean"},
        "owner_id": {"type": ["integer", "null"]},
        "created_by": {
            "type": "object",
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        },
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "files": {
            "type": "array",
            "description": "its files, oldest first, offered (checked) with its text when "
            "it is inserted",
            "items": ref("SavedReplyFile"),
        },
    },
}
SCHEMAS["SavedReplyFile"] = {
    "type": "object",
    "description": "A file of a saved reply",
    "required": ["id", "filename", "content_type", "size", "url"],
    "properties": {
        "id": {"type": "integer", "description": "what `saved_reply_files` of a message names"},
        "filename": {"type": "string"},
        "content_type": {"type": "string"},
        "size": {"type": "integer", "description": "bytes"},
        "url": {"type": "string", "description": "where it is downloaded (staff who may use it)"},
    },
}
SAVED_REPLY_ENVELOPE = {
    "type": "object",
    "required": ["saved_reply"],
    "properties": {"saved_reply": ref("SavedReply")},
}
SAVED_REPLY_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("SavedReply")}},
}
SAVED_REPLY_TEXT = {
    "type": "object",
    "required": ["text", "files"],
    "properties": {
        "text": {"type": "string", "description": "the reply filled in, plain text"},
        "files": {"type": "array", "items": ref("SavedReplyFile")},
    },
}
# Files added to a saved reply: multipart only, at least one file under `attachments`.
SAVED_REPLY_UPLOAD = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["attachments"],
                "properties": {
                    "attachments": ATTACHMENTS["properties"]["attachments"] | {"minItems": 1}
                },
            }
        }
    },
}


# Notifications (DESIGN.md section 12): one's own preferences, and following a ticket.
SCHEMAS["NotificationPreferencesState"] = {
    "type": "object",
    "description": "What one is emailed (each notice on or off)",
    "required": ["new_ticket", "customer_reply", "assigned", "mentioned"],
    "properties": {
        "new_ticket": {"type": "boolean"},
        "customer_reply": {"type": "boolean"},
        "assigned": {"type": "boolean"},
        "mentioned": {"type": "boolean"},
    },
}
FOLLOWING = {
    "type": "object",
    "required": ["following"],
    "properties": {
        "following": {"type": "boolean", "description": "whether one follows the ticket now"}
    },
}

# Accounts (DESIGN.md section 13): password reset and API tokens.
PASSWORD_RESET_ACCEPTED = {
    "type": "object",
    "description": "The same for every address, known or not, and past the rate limits",
    "required": ["status", "message"],
    "properties": {
        "status": {"type": "string", "enum": ["accepted"]},
        "message": {"type": "string"},
    },
}
PASSWORD_SET = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {
        "status": {"type": "string", "enum": ["password_set"]},
        "message": {"type": "string"},
    },
}
SCHEMAS["ApiToken"] = {
    "type": "object",
    "description": "A personal API token, without its secret (shown once, at creation)",
    "required": ["id", "name", "prefix", "created_at", "expires_at", "last_used_at"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "its first characters, to tell it apart"},
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "last_used_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "to the minute: written at most once a minute",
        },
    },
}
API_TOKEN_CREATED = {
    "type": "object",
    "required": ["api_token", "token"],
    "properties": {
        "api_token": ref("ApiToken"),
        "token": {
            "type": "string",
            "pattern": "^sd_pat_",
            "description": "the secret, shown this once: send as `Authorization: Bearer`",
        },
    },
}
API_TOKEN_LIST = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("ApiToken")}},
}
# The audit log (DESIGN.md section 13): what was done to accounts and data, for ADMINs.
SCHEMAS["AuditEntry"] = {
    "type": "object",
    "required": ["id", "at", "action", "label", "actor", "subject", "target", "data"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "action": {"type": "string", "enum": list(AUDIT_ACTIONS)},
        "label": {"type": "string", "description": "the action in words"},
        "actor": {
            "type": ["object", "null"],
            "description": "who did it; null: the system (the scheduler, the command line), "
            "or nobody known (a failed login)",
            "required": ["id", "name", "email"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "email": {"type": "string"},
            },
        },
        "subject": {
            "type": ["string", "null"],
            "description": "the address a failed login typed, when no account is known",
        },
        "target": {
            "type": ["object", "null"],
            "description": "what it was done to (`user` 42, `mailbox` 3, ...)",
            "required": ["type", "id"],
            "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
        },
        "client_ip": {
            "type": ["string", "null"],
            "description": "the client's address (or its network, as rate limits count it)",
        },
        "request_id": {"type": ["string", "null"], "description": "the X-Request-ID"},
        "data": {"type": "object", "description": "what the action changed; never a secret"},
    },
}
AUDIT_PAGE = {
    "type": "object",
    "required": ["items", "per_page", "next_cursor"],
    "properties": {
        "items": {"type": "array", "items": ref("AuditEntry")},
        "per_page": {"type": "integer"},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "give it as `cursor` for the next (older) page; null: the last page",
        },
    },
}

# A customer's personal data (DESIGN.md section 13): what an erasure changed.
SCHEMAS["Erased"] = {
    "type": "object",
    "description": "What one erasure changed (0 everywhere: nothing was left to erase)",
    "required": [
        "tickets",
        "other_tickets",
        "messages",
        "files",
        "outbox",
        "quarantine",
        "events",
    ],
    "properties": {
        "tickets": {"type": "integer", "description": "tickets they requested"},
        "other_tickets": {"type": "integer", "description": "others' tickets they took part in"},
        "messages": {"type": "integer", "description": "messages whose text was removed"},
        "files": {"type": "integer", "description": "files removed"},
        "outbox": {"type": "integer", "description": "outbox rows blanked"},
        "quarantine": {"type": "integer", "description": "quarantined emails removed"},
        "events": {"type": "integer", "description": "timeline events rewritten"},
    },
}
ERASED = {"type": "object", "required": ["erased"], "properties": {"erased": ref("Erased")}}

# Two-factor authentication (DESIGN.md section 13).
SCHEMAS["LoginChallenge"] = {
    "type": "object",
    "description": "The password was right and the account has two-factor on: no session yet; "
    "POST /api/auth/login/2fa with the challenge and a code finishes the login",
    "required": ["two_factor", "challenge", "expires_at"],
    "properties": {
        "two_factor": {"type": "string", "enum": ["required"]},
        "challenge": {"type": "string", "description": "signed, valid a few minutes"},
        "expires_at": {"type": "string", "format": "date-time"},
    },
}
SCHEMAS["TwoFactorState"] = {
    "type": "object",
    "required": ["enabled", "enrolment_started", "required", "recovery_codes_left"],
    "properties": {
        "enabled": {"type": "boolean"},
        "enrolment_started": {
            "type": "boolean",
            "description": "a secret was issued and not confirmed yet",
        },
        "required": {"type": "boolean", "description": "REQUIRE_2FA_FOR covers one's role"},
        "recovery_codes_left": {"type": "integer", "minimum": 0},
    },
}
TWO_FACTOR_ENROLMENT = {
    "type": "object",
    "required": ["secret", "otpauth_uri", "qr_svg"],
    "properties": {
        "secret": {"type": "string", "description": "base32, to type into the app"},
        "otpauth_uri": {"type": "string", "description": "otpauth://totp/... for the app"},
        "qr_svg": {"type": "string", "description": "the URI as a QR code, an inline <svg>"},
    },
}
RECOVERY_CODES = {
    "type": "object",
    "required": ["recovery_codes"],
    "properties": {
        "recovery_codes": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 10,
            "maxItems": 10,
            "description": "each works once in place of a code; shown this once, stored hashed",
        }
    },
}
