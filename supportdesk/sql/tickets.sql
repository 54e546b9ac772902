-- name: take_pid_number$
-- The next PID number of a month; the row lock serializes creators until commit.
INSERT INTO pid_counters AS c (period, last_value)
VALUES (:period, 1)
ON CONFLICT (period) DO UPDATE SET last_value = c.last_value + 1
RETURNING last_value;

-- name: reserve_ticket_id$
-- An id for a ticket about to be created, so that its children can be written before it.
SELECT nextval(pg_get_serial_sequence('tickets', 'id'));

-- name: open_thread<!
-- A new ticket's first message (the requester's) and its CREATED event, in one round trip, under the ticket's
-- id: `ticket_id` when one was reserved (its files are stored under it), else a new one. The
-- ticket row follows in the same transaction (the foreign keys are checked at commit).
WITH ticket AS (
    SELECT coalesce(:ticket_id, nextval(pg_get_serial_sequence('tickets', 'id'))) AS id
), created AS (
    INSERT INTO ticket_events (ticket_id, type, actor_id, data, created_at)
    VALUES ((SELECT id FROM ticket), 'CREATED', :actor_id, :created_data, :created_at)
)
INSERT INTO ticket_messages (ticket_id, author, author_user_id, author_email, visibility,
                             channel, body, full_body, html_body, email_message_id, created_at,
                             sender_auth)
VALUES ((SELECT id FROM ticket), 'CUSTOMER', NULL, :author_email, 'PUBLIC', :channel, :body,
        :full_body, :html_body, :email_message_id, :created_at, :sender_auth)
RETURNING *;

-- name: insert_ticket<!
-- A new ticket; its PID was taken in the same transaction. `id` may be reserved beforehand.
-- `mailbox_id`: the mailbox it came in on (NULL: MAIL_FROM's), whose address answers it.
INSERT INTO tickets (id, pid, subject, status, priority, requester_email, requester_name,
                     channel, assigned_to, follows_up_id, mailbox_id, created_at, updated_at)
OVERRIDING SYSTEM VALUE
VALUES (coalesce(:id, nextval(pg_get_serial_sequence('tickets', 'id'))), :pid, :subject,
        :status, :priority, :requester_email, :requester_name, :channel, :assigned_to,
        :follows_up_id, :mailbox_id, :created_at, :created_at)
RETURNING *;

-- name: visible_ticket^
-- One ticket as a staff member may see it: with its assignee, and only if the viewer may
-- open it (ADMIN and SUB_ADMIN: any; AGENT: assigned to them), and the address of the
-- mailbox it came in on (which answers it).
SELECT t.*, u.name AS assignee_name, u.email AS assignee_email,
       u.is_active AS assignee_active, mb.address AS mailbox_address
FROM tickets t
LEFT JOIN users u ON u.id = t.assigned_to
LEFT JOIN mailboxes mb ON mb.id = t.mailbox_id
WHERE t.pid = :pid
  AND (:viewer_sees_all OR t.assigned_to = :viewer_id
       OR (:viewer_sees_unassigned AND t.assigned_to IS NULL));

-- name: lock_visible_ticket^
-- The same ticket, locked for a change, under the same visibility rule.
SELECT t.*
FROM tickets t
WHERE t.pid = :pid
  AND (:viewer_sees_all OR t.assigned_to = :viewer_id
       OR (:viewer_sees_unassigned AND t.assigned_to IS NULL))
FOR UPDATE;

-- name: list_tickets*
-- One page of the tickets a viewer may see, newest first, under the optional filters, and
-- on every row `matching`: how many tickets pass the same filters, counted no further than
-- :cap + 1. The filters are written once (the CTE), so the page and its total cannot
-- disagree. A page past the end is one row with `matching` and no ticket (id NULL).
-- The CTE is NOT MATERIALIZED, so each use of it is planned inline, and the query is never
-- prepared (see the `options` line): each execution is planned with its values, a filter left
-- NULL is folded away, and the page and the count each use the index of the filters given.
-- options: no_prepare
WITH filtered AS NOT MATERIALIZED (
    SELECT t.*
    FROM tickets t
    WHERE (:viewer_sees_all OR t.assigned_to = :viewer_id
       OR (:viewer_sees_unassigned AND t.assigned_to IS NULL))
      AND (:status::ticket_status IS NULL OR t.status = :status::ticket_status)
      AND (:priority::ticket_priority IS NULL OR t.priority = :priority::ticket_priority)
      AND (NOT :unassigned OR t.assigned_to IS NULL)
      AND (:assignee_id::bigint IS NULL OR t.assigned_to = :assignee_id::bigint)
      AND ((:q_pid::text IS NULL AND :q_email::text IS NULL AND :q_like::text IS NULL
            AND :q_starts::text IS NULL)
           OR t.pid = :q_pid::text
           OR lower(t.requester_email) = :q_email::text
           OR t.search_text LIKE :q_like
           OR t.search_text LIKE :q_starts
           OR t.search_text LIKE :q_word)
)
SELECT counted.matching, page.*
FROM (
    SELECT CASE
        -- An AGENT that sees the pile (AGENTS_SEE_UNASSIGNED) counts its own tickets and the
        -- unassigned ones apart, each on the assignee index, rather than filter ~5 rows for
        -- each one it counts; a text search (q_like, q_starts) counts in one pass, on its
        -- narrower trigram index. Both counts are of `filtered`: the rule is still applied.
        WHEN NOT :viewer_sees_all AND :viewer_sees_unassigned
             AND :q_like::text IS NULL AND :q_starts::text IS NULL
        THEN least(:cap + 1,
                   (SELECT count(*) FROM (SELECT 1 FROM filtered t WHERE t.assigned_to = :viewer_id
                                          LIMIT :cap + 1) AS held)
                   + (SELECT count(*) FROM (SELECT 1 FROM filtered t WHERE t.assigned_to IS NULL
                                            LIMIT :cap + 1) AS pile))
        ELSE (SELECT count(*) FROM (SELECT 1 FROM filtered LIMIT :cap + 1) AS capped)
    END AS matching
) AS counted
LEFT JOIN LATERAL (
    SELECT f.id, f.pid, f.subject, f.status, f.priority, f.requester_email, f.requester_name,
           f.assigned_to, f.created_at, f.updated_at,
           u.name AS assignee_name, u.email AS assignee_email
    FROM filtered f
    LEFT JOIN users u ON u.id = f.assigned_to
    ORDER BY f.created_at DESC, f.id DESC
    LIMIT :limit OFFSET :offset
) AS page ON true
ORDER BY page.created_at DESC, page.id DESC;

-- name: set_ticket_fields<!
-- Change status, priority and assignee of a ticket. A ticket that stops WAITING stops
-- waiting for a moment too (`waiting_until`, section 12, is only ever set on a WAITING one).
UPDATE tickets
SET status = :status, priority = :priority, assigned_to = :assigned_to, updated_at = :now,
    waiting_until = CASE WHEN (:status)::ticket_status = 'WAITING' THEN waiting_until END
WHERE id = :id
RETURNING *;

-- name: touch_ticket!
-- A ticket had activity (a message) without a change of its fields.
UPDATE tickets SET updated_at = :now WHERE id = :id;
