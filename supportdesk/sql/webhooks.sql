-- Outgoing webhooks (DESIGN.md section 13): the registrations, and their deliveries, which
-- go through the same statuses and the same worker design as email_outbox (outbox.sql).

-- name: list_webhooks*
-- Every webhook, oldest first, with how its deliveries stand.
SELECT w.id, w.url, w.events::text[] AS events, w.active, w.created_at, w.updated_at,
       (SELECT count(*) FROM webhook_deliveries d
        WHERE d.webhook_id = w.id AND d.status = 'DEAD') AS dead,
       (SELECT count(*) FROM webhook_deliveries d
        WHERE d.webhook_id = w.id AND d.status IN ('PENDING', 'SENDING', 'FAILED')) AS undelivered
FROM webhooks w
ORDER BY w.id;

-- name: webhook_by_id^
-- One webhook, with its sealed secret.
SELECT w.id, w.url, w.events::text[] AS events, w.active, w.secret_encrypted, w.created_at,
       w.updated_at, 0::bigint AS dead, 0::bigint AS undelivered
FROM webhooks w
WHERE w.id = :id;

-- name: insert_webhook<!
-- A new registration.
INSERT INTO webhooks (url, events, secret_encrypted, active, created_by, created_at, updated_at)
VALUES (:url, :events::webhook_event[], :secret_encrypted, :active, :created_by, :now, :now)
RETURNING id;

-- name: update_webhook^
-- A registration changed (each NULL keeps what was there).
UPDATE webhooks
SET url = coalesce(:url, url),
    events = coalesce(:events::webhook_event[], events),
    secret_encrypted = coalesce(:secret_encrypted, secret_encrypted),
    active = coalesce(:active, active),
    updated_at = :now
WHERE id = :id
RETURNING id;

-- name: delete_webhook^
-- A registration removed, with its deliveries (ON DELETE CASCADE).
DELETE FROM webhooks WHERE id = :id RETURNING id, url;

-- name: queue_webhook_deliveries*
-- In the transaction of a ticket's change: one delivery for each active webhook that wants
-- :event, its payload the ticket as it is now (with the change, the actor and the message),
-- and a NOTIFY that PostgreSQL sends only if the transaction commits (the worker's listener
-- puts the ids on the queue: worker/webhooks.py).
WITH wanted AS (
    SELECT id FROM webhooks WHERE active AND :event::webhook_event = ANY(events)
), payload AS (
    SELECT jsonb_build_object(
        'ticket', (
            SELECT jsonb_build_object(
                'pid', t.pid, 'subject', t.subject, 'status', t.status,
                'priority', t.priority, 'channel', t.channel,
                'requester', jsonb_build_object('email', t.requester_email,
                                                'name', t.requester_name),
                'assignee', CASE WHEN a.id IS NULL THEN NULL ELSE
                    jsonb_build_object('id', a.id, 'name', a.name, 'email', a.email) END,
                'created_at', t.created_at, 'updated_at', t.updated_at)
            FROM tickets t LEFT JOIN users a ON a.id = t.assigned_to
            WHERE t.id = :ticket_id),
        'actor', (
            SELECT jsonb_build_object('id', u.id, 'name', u.name, 'email', u.email)
            FROM users u WHERE u.id = :actor_id),
        'changes', :changes::jsonb,
        'message', (
            SELECT jsonb_build_object(
                'id', m.id, 'author', m.author, 'author_email', m.author_email,
                'visibility', m.visibility, 'channel', m.channel, 'body', m.body,
                'created_at', m.created_at)
            FROM ticket_messages m WHERE m.id = :message_id AND m.ticket_id = :ticket_id)
    ) AS data
    FROM (SELECT 1 FROM wanted LIMIT 1) AS any_wanted
), inserted AS (
    INSERT INTO webhook_deliveries (webhook_id, event, ticket_id, payload, created_at, updated_at)
    SELECT w.id, :event::webhook_event, :ticket_id,
           jsonb_build_object('event', :event::text, 'occurred_at', :now::timestamptz)
           || p.data,
           :now, :now
    FROM wanted w CROSS JOIN payload p
    ORDER BY w.id  -- the registrations' order, not the heap's: ids (and sends) follow it
    RETURNING id
)
SELECT id, pg_notify('sd_webhook_deliveries', id::text) AS notified FROM inserted;

-- name: claim_webhook_deliveries*
-- Take deliveries for sending, as :worker (claim_outbox_emails's rules), with what they go
-- to: only rows still waiting, due, or this worker's own unfinished ones.
UPDATE webhook_deliveries d
SET status = 'SENDING', claimed_by = :worker, last_attempt_at = :now, updated_at = :now
FROM webhooks w
WHERE d.id = ANY(:ids::bigint[]) AND w.id = d.webhook_id
  AND (d.status = 'PENDING'
       OR (d.status = 'FAILED' AND d.next_attempt_at <= :now + interval '5 seconds')
       OR (d.status = 'SENDING' AND d.claimed_by = :worker))
RETURNING d.*, w.url, w.secret_encrypted;

-- name: webhook_delivery_statuses*
-- The status of some deliveries (why a claim found them not takeable).
SELECT id, status FROM webhook_deliveries WHERE id = ANY(:ids::bigint[]);

-- name: mark_webhook_sent^
-- Delivered (a 2xx). Once only.
UPDATE webhook_deliveries
SET status = 'SENT', attempts = attempts + 1, sent_at = :now, next_attempt_at = NULL,
    response_status = :response_status, claimed_by = NULL, updated_at = :now
WHERE id = :id AND status <> 'SENT'
RETURNING id;

-- name: mark_webhook_failed!
-- An attempt by :worker failed and another is due at :next_attempt_at.
UPDATE webhook_deliveries
SET status = 'FAILED', attempts = attempts + 1, last_error = :error,
    response_status = :response_status, next_attempt_at = :next_attempt_at,
    claimed_by = NULL, updated_at = :now
WHERE id = :id AND status = 'SENDING' AND claimed_by = :worker;

-- name: mark_webhook_dead^
-- The last attempt failed: no more retries until an ADMIN asks for one.
UPDATE webhook_deliveries
SET status = 'DEAD', attempts = attempts + 1, last_error = :error,
    response_status = :response_status, next_attempt_at = NULL, claimed_by = NULL,
    updated_at = :now
WHERE id = :id AND status = 'SENDING' AND claimed_by = :worker
RETURNING id;

-- name: release_webhook_claims*
-- Deliveries :worker took and will not finish (it is stopping): waiting again.
UPDATE webhook_deliveries
SET status = 'PENDING', claimed_by = NULL, updated_at = :now
WHERE id = ANY(:ids::bigint[]) AND status = 'SENDING' AND claimed_by = :worker
RETURNING id;

-- name: reset_webhook_claims_of_dead_workers*
-- Deliveries taken by workers that are gone (:dead, or anyone not in :alive): waiting again
-- (reset_claims_of_dead_workers's rules).
UPDATE webhook_deliveries
SET status = 'PENDING', claimed_by = NULL, updated_at = :now
WHERE status = 'SENDING'
  AND (claimed_by = ANY(:dead::text[])
       OR (id = ANY(:ids::bigint[]) AND updated_at < :before
           AND (claimed_by IS NULL OR NOT (claimed_by = ANY(:alive::text[])))))
RETURNING id, ticket_id, attempts, claimed_by;

-- name: webhook_deliveries_not_held*
-- The sweeper's work: unfinished deliveries that no Redis structure holds, untouched for a
-- while, oldest first.
SELECT id, ticket_id, status, next_attempt_at
FROM webhook_deliveries
WHERE status IN ('PENDING', 'SENDING', 'FAILED')
  AND updated_at < :before
  AND NOT (id = ANY(:held::bigint[]))
ORDER BY created_at, id
LIMIT :limit;

-- name: list_webhook_deliveries*
-- A webhook's recent deliveries, newest first (optionally of one status), with the PID.
SELECT d.id, d.webhook_id, d.event, d.status, d.attempts, d.last_error, d.response_status,
       d.next_attempt_at, d.last_attempt_at, d.sent_at, d.created_at, t.pid
FROM webhook_deliveries d
LEFT JOIN tickets t ON t.id = d.ticket_id
WHERE d.webhook_id = :webhook_id
  AND (:status::outbox_status IS NULL OR d.status = :status::outbox_status)
ORDER BY d.id DESC
LIMIT :limit OFFSET :offset;

-- name: webhook_delivery^
-- One delivery as the API shows it.
SELECT d.id, d.webhook_id, d.event, d.status, d.attempts, d.last_error, d.response_status,
       d.next_attempt_at, d.last_attempt_at, d.sent_at, d.created_at, t.pid
FROM webhook_deliveries d
LEFT JOIN tickets t ON t.id = d.ticket_id
WHERE d.id = :id;

-- name: retry_dead_webhook_delivery^
-- An ADMIN's retry of a DEAD delivery: waiting again with a fresh set of attempts.
UPDATE webhook_deliveries
SET status = 'PENDING', attempts = 0, next_attempt_at = NULL, updated_at = :now
WHERE id = :id AND status = 'DEAD'
RETURNING id;
