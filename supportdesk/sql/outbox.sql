-- name: insert_outbox_email<!
-- An email to send, written in the transaction that decided to send it.
INSERT INTO email_outbox (ticket_id, ticket_message_id, kind, to_address, from_address,
                          reply_to, subject, body_text, body_html, message_id, in_reply_to,
                          "references", headers, mailbox_id, cc_addresses, attachment_ids,
                          created_at, updated_at)
VALUES (:ticket_id, :ticket_message_id, :kind, :to_address, :from_address, :reply_to,
        :subject, :body_text, :body_html, :message_id, :in_reply_to, :references, :headers,
        :mailbox_id, :cc_addresses, :attachment_ids, :created_at, :created_at)
RETURNING id, message_id;

-- name: ticket_thread_message_ids*
-- The Message-IDs of a ticket's conversation with its customer, oldest first: the emails
-- the customer sent us and those we sent them (a staff reply's In-Reply-To / References),
-- the notice that the ticket was closed among them.
SELECT message_id FROM (
    SELECT email_message_id AS message_id, created_at, 0 AS source, id
    FROM ticket_messages
    WHERE ticket_id = :ticket_id AND email_message_id IS NOT NULL
    UNION ALL
    SELECT message_id, created_at, 1 AS source, id
    FROM email_outbox
    WHERE ticket_id = :ticket_id AND kind IN ('ACKNOWLEDGEMENT', 'REPLY', 'CLOSE_NOTICE')
) AS thread
ORDER BY created_at, source, id;

-- name: claim_outbox_emails*
-- Take rows for delivery, as :worker: only rows still waiting (PENDING), whose retry is due
-- (FAILED; a few seconds of leeway for the clocks of other hosts) or that this worker took
-- and could not finish can be taken, so a duplicate id in Redis never sends twice nor
-- early. `attempts` counts an attempt when its outcome is recorded (below). With each row
-- come the rows of the files it carries (`attachments`, in the order of attachment_ids;
-- a file erased since is simply not there), for the worker to read from storage.
UPDATE email_outbox
SET status = 'SENDING', claimed_by = :worker, last_attempt_at = :now, updated_at = :now
WHERE id = ANY(:ids::bigint[])
  AND (status = 'PENDING'
       OR (status = 'FAILED' AND next_attempt_at <= :now + interval '5 seconds')
       OR (status = 'SENDING' AND claimed_by = :worker))
RETURNING *,
    CASE WHEN cardinality(attachment_ids) = 0 THEN '[]'::jsonb ELSE (
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'id', a.id, 'filename', a.filename, 'content_type', a.content_type,
                   'size_bytes', a.size_bytes, 'sha256', a.sha256,
                   'storage_key', a.storage_key) ORDER BY f.n), '[]'::jsonb)
        FROM unnest(attachment_ids) WITH ORDINALITY AS f (id, n)
        JOIN attachments a ON a.id = f.id
    ) END AS attachments;

-- name: outbox_statuses*
-- The status of some rows (why a claim found them not takeable).
SELECT id, status FROM email_outbox WHERE id = ANY(:ids::bigint[]);

-- name: mark_outbox_sent^
-- Delivered. Once only: a row already SENT stays as it was (and gets no second event).
UPDATE email_outbox
SET status = 'SENT', attempts = attempts + 1, sent_at = :now, next_attempt_at = NULL,
    claimed_by = NULL, updated_at = :now
WHERE id = :id AND status <> 'SENT'
RETURNING id;

-- name: mark_outbox_failed!
-- An attempt by :worker failed and another is due at :next_attempt_at (:counted: whether
-- it uses up one of the attempts; a mail server that cannot be reached does not).
UPDATE email_outbox
SET status = 'FAILED', attempts = attempts + CASE WHEN :counted THEN 1 ELSE 0 END,
    last_error = :error, next_attempt_at = :next_attempt_at, claimed_by = NULL,
    updated_at = :now
WHERE id = :id AND status = 'SENDING' AND claimed_by = :worker;

-- name: mark_outbox_dead^
-- The last attempt failed, or the failure was permanent: no more retries.
UPDATE email_outbox
SET status = 'DEAD', attempts = attempts + 1, last_error = :error, next_attempt_at = NULL,
    claimed_by = NULL, updated_at = :now
WHERE id = :id AND status = 'SENDING' AND claimed_by = :worker
RETURNING id;

-- name: release_claims*
-- Rows :worker took and will not finish (it is stopping): waiting again.
UPDATE email_outbox
SET status = 'PENDING', claimed_by = NULL, updated_at = :now
WHERE id = ANY(:ids::bigint[]) AND status = 'SENDING' AND claimed_by = :worker
RETURNING id;

-- name: reset_claims_of_dead_workers*
-- Rows taken by workers that are gone (:dead, or anyone not in :alive): waiting again. The
-- one such a worker was sending when it vanished may have been delivered already.
UPDATE email_outbox
SET status = 'PENDING', claimed_by = NULL, updated_at = :now
WHERE status = 'SENDING'
  AND (claimed_by = ANY(:dead::text[])
       OR (id = ANY(:ids::bigint[]) AND updated_at < :before
           AND (claimed_by IS NULL OR NOT (claimed_by = ANY(:alive::text[])))))
RETURNING id, ticket_id, attempts, claimed_by;

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

-- name: ticket_sending_mailbox^
-- The active mailbox a ticket came in on, whose address its customer emails are sent From.
SELECT m.id, m.address, m.display_name
FROM tickets t
JOIN mailboxes m ON m.id = t.mailbox_id
WHERE t.id = :ticket_id AND m.is_active;

-- name: sending_mailbox^
-- The mailbox an outbox row was written From, as the worker reads it at send time.
SELECT * FROM mailboxes WHERE id = :id;
