-- name: insert_outbox_email<!
-- An email to send, written in the transaction that decided to send it.
INSERT INTO email_outbox (ticket_id, ticket_message_id, kind, to_address, from_address,
                          reply_to, subject, body_text, body_html, message_id, in_reply_to,
                          "references", headers, created_at, updated_at)
VALUES (:ticket_id, :ticket_message_id, :kind, :to_address, :from_address, :reply_to,
        :subject, :body_text, :body_html, :message_id, :in_reply_to, :references, :headers,
        :created_at, :created_at)
RETURNING id, message_id;

-- name: ticket_thread_message_ids*
-- The Message-IDs of a ticket's conversation with its customer, oldest first: the emails
-- the customer sent us and those we sent them (a staff reply's In-Reply-To / References).
SELECT message_id FROM (
    SELECT email_message_id AS message_id, created_at, 0 AS source, id
    FROM ticket_messages
    WHERE ticket_id = :ticket_id AND email_message_id IS NOT NULL
    UNION ALL
    SELECT message_id, created_at, 1 AS source, id
    FROM email_outbox
    WHERE ticket_id = :ticket_id AND kind IN ('ACKNOWLEDGEMENT', 'REPLY')
) AS thread
ORDER BY created_at, source, id;

-- name: claim_outbox_email^
-- Take a row for one delivery attempt: only a row still waiting (PENDING) or waiting for
-- a retry (FAILED) can be taken, so a duplicate id in Redis never sends twice.
UPDATE email_outbox
SET status = 'SENDING', attempts = attempts + 1, last_attempt_at = :now, updated_at = :now
WHERE id = :id AND status IN ('PENDING', 'FAILED')
RETURNING *;

-- name: outbox_status$
-- The status of one row (why a claim found nothing to take).
SELECT status FROM email_outbox WHERE id = :id;

-- name: mark_outbox_sent^
-- Delivered. Once only: a row already SENT stays as it was (and gets no second event).
UPDATE email_outbox
SET status = 'SENT', sent_at = :now, next_attempt_at = NULL, updated_at = :now
WHERE id = :id AND status <> 'SENT'
RETURNING id;

-- name: mark_outbox_failed!
-- An attempt failed and another is due at :next_attempt_at.
UPDATE email_outbox
SET status = 'FAILED', last_error = :error, next_attempt_at = :next_attempt_at,
    updated_at = :now
WHERE id = :id AND status NOT IN ('SENT', 'DEAD');

-- name: mark_outbox_dead^
-- The last attempt failed, or the failure was permanent: no more retries.
UPDATE email_outbox
SET status = 'DEAD', last_error = :error, next_attempt_at = NULL, updated_at = :now
WHERE id = :id AND status NOT IN ('SENT', 'DEAD')
RETURNING id;

-- name: reset_interrupted_outbox*
-- Rows a vanished worker was sending: waiting again (their delivery may have happened).
UPDATE email_outbox
SET status = 'PENDING', updated_at = :now
WHERE id = ANY(:ids::bigint[]) AND status = 'SENDING'
RETURNING id, ticket_id, attempts;

-- name: undelivered_not_held*
-- The sweeper's work: undelivered rows that no Redis structure holds, untouched for a
-- while (a row written a moment ago may not have been pushed yet), oldest first.
SELECT id, ticket_id, status, next_attempt_at
FROM email_outbox
WHERE status IN ('PENDING', 'SENDING', 'FAILED')
  AND updated_at < :before
  AND NOT (id = ANY(:held::bigint[]))
ORDER BY created_at, id
LIMIT :limit;

-- name: list_outbox*
-- One page of deliveries, newest first, optionally of one status, with the ticket's PID.
-- options: no_prepare
SELECT o.id, o.kind, o.to_address, o.subject, o.status, o.attempts, o.last_error,
       o.next_attempt_at, o.last_attempt_at, o.sent_at, o.message_id, o.created_at,
       o.updated_at, t.pid
FROM email_outbox o
LEFT JOIN tickets t ON t.id = o.ticket_id
WHERE (:status::outbox_status IS NULL OR o.status = :status::outbox_status)
ORDER BY o.id DESC
LIMIT :limit OFFSET :offset;

-- name: count_outbox_by_status*
-- How many deliveries each status has, counting no further than :cap + 1 each.
SELECT s.status::text AS status,
       (SELECT count(*) FROM (SELECT 1 FROM email_outbox o WHERE o.status = s.status
                              LIMIT :cap + 1) AS capped) AS count
FROM unnest(enum_range(NULL::outbox_status)) AS s (status);

-- name: retry_dead_outbox^
-- An admin's retry of a DEAD delivery: waiting again, with a fresh set of attempts (the
-- last error stays visible until it is sent).
UPDATE email_outbox
SET status = 'PENDING', attempts = 0, next_attempt_at = NULL, updated_at = :now
WHERE id = :id AND status = 'DEAD'
RETURNING id;

-- name: outbox_delivery^
-- One delivery as the Outbox page shows it.
SELECT o.id, o.kind, o.to_address, o.subject, o.status, o.attempts, o.last_error,
       o.next_attempt_at, o.last_attempt_at, o.sent_at, o.message_id, o.created_at,
       o.updated_at, t.pid
FROM email_outbox o
LEFT JOIN tickets t ON t.id = o.ticket_id
WHERE o.id = :id;

-- name: outbox_health^
-- For /healthz: when the oldest waiting email was written, how many are undelivered, and
-- how many gave up (capped).
SELECT (SELECT min(created_at) FROM email_outbox WHERE status = 'PENDING') AS oldest_pending,
       (SELECT count(*) FROM email_outbox
        WHERE status IN ('PENDING', 'SENDING', 'FAILED')) AS undelivered,
       (SELECT count(*) FROM (SELECT 1 FROM email_outbox WHERE status = 'DEAD'
                              LIMIT 10001) AS capped) AS dead;
