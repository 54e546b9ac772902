"""The producer side of outbound email: the transactional outbox (DESIGN.md section 6).

Whoever decides that an email must go out calls `queue_email` inside its own transaction:
the `email_outbox` row commits or rolls back with the change that caused it. After the
commit, `push_after_commit` puts the new ids on the Redis queue for the worker. The rows are
the truth: an id that never reaches Redis (Redis down, flushed) is found again by the
worker's sweeper, which re-enqueues undelivered rows that no queue holds. The
`supportdesk.worker` package is the consumer side (through `queue`); it never writes new rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from types import EllipsisType

import psycopg
import redis
from psycopg.types.json import Jsonb

from supportdesk.core.db import queries
from supportdesk.mail.outbound.compose import OutboundEmail, audience_of
from supportdesk.mail.outbound.queue import EMAIL_QUEUE

log = logging.getLogger("supportdesk.mail.outbound.outbox")


_insert_outbox_email = queries.insert_outbox_email
_ticket_thread_message_ids = queries.ticket_thread_message_ids
_ticket_sending_mailbox = queries.ticket_sending_mailbox


def queue_email(
    conn: psycopg.Connection,
    email: OutboundEmail,
    *,
    ticket_id: int | None,
    now: datetime,
    ticket_message_id: int | None = None,
    ticket_mailbox_id: int | EllipsisType | None = ...,
) -> int:
    """Write `email` to the outbox in the caller's transaction; returns its outbox id, to be
    given to `push_after_commit` once that transaction has committed.

    A customer's email about a ticket that came in on a company mailbox goes out From that
    mailbox (section 10): decided here, once for every kind of customer email, and kept
    with the row (`mailbox_id`), whose SMTP server the worker then uses. A caller holding
    the ticket row passes its `mailbox_id` as `ticket_mailbox_id`: None then saves looking
    it up (a new ticket's acknowledgement is queued while the PID counter is locked)."""
    mailbox = None
    customers = ticket_id is not None and audience_of(email.kind) == "CUSTOMER"
    if customers and ticket_mailbox_id is not None:
        mailbox = _ticket_sending_mailbox(conn, ticket_id=ticket_id)
        if mailbox is not None:
            email = email.sent_from(mailbox["address"], mailbox["display_name"])
    row = _insert_outbox_email(
        conn,
        ticket_id=ticket_id,
        ticket_message_id=ticket_message_id,
        kind=email.kind,
        to_address=email.to_address,
        from_address=email.from_address,
        reply_to=email.reply_to,
        subject=email.subject,
        body_text=email.body_text,
        body_html=email.body_html,
        message_id=email.message_id,
        in_reply_to=email.in_reply_to,
        references=email.references,
        headers=Jsonb(email.headers),
        mailbox_id=mailbox["id"] if mailbox else None,
        cc_addresses=list(email.cc),
        attachment_ids=list(email.attachment_ids),
        created_at=now,
    )
    return row["id"]


def thread_message_ids(conn: psycopg.Connection, ticket_id: int) -> list[str]:
    """The Message-IDs of the ticket's email conversation with its customer, oldest first."""
    return [row["message_id"] for row in _ticket_thread_message_ids(conn, ticket_id=ticket_id)]


def push_after_commit(redis_client: redis.Redis, outbox_ids: Iterable[int]) -> bool:
    """Push committed outbox ids onto the queue; False (logged, not raised) when Redis is
    unreachable, since the rows are safe and the sweeper will pick them up."""
    ids = [str(i) for i in outbox_ids]
    if not ids:
        return True
    try:
        redis_client.lpush(EMAIL_QUEUE, *ids)
    except redis.RedisError as ex:
        log.warning("could not enqueue outbox ids %s (the sweeper will retry): %r", ids, ex)
        return False
    return True
