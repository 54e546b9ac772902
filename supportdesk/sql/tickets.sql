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
-- Returns the columns ticket_thread reads: not the HTML (up to megabytes), not the
-- search_vector (of no use to the caller).
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
RETURNING id, ticket_id, author, author_user_id, author_email, visibility, channel, body,
          full_body, email_message_id, created_at, matched_by_subject_only, sender_auth,
          html_body IS NOT NULL AS html_available;

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
-- mailbox it came in on (which answers it), and the PID of the ticket it was merged into.
SELECT t.*, u.name AS assignee_name, u.email AS assignee_email,
       u.is_active AS assignee_active, mb.address AS mailbox_address,
       (SELECT m.pid FROM tickets m WHERE m.id = t.merged_into_id) AS merged_into_pid
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

-- name: ticket_pid_by_id$
-- A ticket's number, from its id (the ticket a merged one points at).
SELECT pid FROM tickets WHERE id = :id;

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
      AND (:requester::text IS NULL OR lower(t.requester_email) = :requester::text)
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

-- name: list_tickets_text*
-- list_tickets for a text search (search.Search.words): the same page and capped count, of
-- the tickets whose subject, requester name or email holds the text (the trigram index, as
-- list_tickets does) OR one of whose messages holds all its words (full-text search on
-- ticket_messages.search_vector, `simple` configuration; any visibility: only staff search).
-- Written as two parts rather than one OR: with the OR, no index could serve the messages,
-- and a rare word would walk every ticket. Each part is cut to what is needed (for the page,
-- its newest :limit + :offset; for the count, any :cap + 1), so each is planned on its own
-- for that cut: the GIN index of the messages for a rare word, the newest-first index
-- probing each ticket's messages for a common one. The cuts are united (UNION: a ticket
-- found both ways is listed once; a few hundred rows at most, so that costs little) rather
-- than the message part leaving out what the subject part found: the planner cannot know
-- that a subject's words are also in the first message, and would walk every ticket.
-- options: no_prepare
WITH visible AS NOT MATERIALIZED (
    SELECT t.*
    FROM tickets t
    WHERE (:viewer_sees_all OR t.assigned_to = :viewer_id
       OR (:viewer_sees_unassigned AND t.assigned_to IS NULL))
      AND (:status::ticket_status IS NULL OR t.status = :status::ticket_status)
      AND (:priority::ticket_priority IS NULL OR t.priority = :priority::ticket_priority)
      AND (NOT :unassigned OR t.assigned_to IS NULL)
      AND (:assignee_id::bigint IS NULL OR t.assigned_to = :assignee_id::bigint)
      AND (:requester::text IS NULL OR lower(t.requester_email) = :requester::text)
), by_subject AS NOT MATERIALIZED (
    SELECT t.id, t.created_at
    FROM visible t
    WHERE t.pid = :q_pid::text
       OR t.search_text LIKE :q_like
       OR t.search_text LIKE :q_starts
       OR t.search_text LIKE :q_word
), by_message AS NOT MATERIALIZED (
    SELECT t.id, t.created_at
    FROM visible t
    WHERE EXISTS (SELECT 1 FROM ticket_messages m
                  WHERE m.ticket_id = t.id
                    AND m.search_vector @@ plainto_tsquery('simple', :q_words::text))
)
SELECT counted.matching, page.*
FROM (
    -- Enough found by subject (a common word of the subjects is also in their first
    -- messages): the messages are not counted at all.
    SELECT CASE
        WHEN (SELECT count(*) FROM (SELECT 1 FROM by_subject LIMIT :cap + 1) AS s) > :cap
        THEN :cap + 1
        ELSE (SELECT count(*)
              FROM (SELECT id FROM (SELECT id FROM by_subject LIMIT :cap + 1) AS s
                    UNION
                    SELECT id FROM (SELECT id FROM by_message LIMIT :cap + 1) AS m
                    LIMIT :cap + 1) AS capped)
    END AS matching
) AS counted
LEFT JOIN LATERAL (
    SELECT t.id, t.pid, t.subject, t.status, t.priority, t.requester_email, t.requester_name,
           t.assigned_to, t.created_at, t.updated_at,
           u.name AS assignee_name, u.email AS assignee_email
    FROM (
        (SELECT id, created_at FROM by_subject
         ORDER BY created_at DESC, id DESC LIMIT :limit + :offset)
        UNION
        (SELECT id, created_at FROM by_message
         ORDER BY created_at DESC, id DESC LIMIT :limit + :offset)
    ) AS f
    JOIN tickets t ON t.id = f.id
    LEFT JOIN users u ON u.id = t.assigned_to
    ORDER BY f.created_at DESC, f.id DESC
    LIMIT :limit OFFSET :offset
) AS page ON true
ORDER BY page.created_at DESC, page.id DESC;

-- name: requester_other_tickets*
-- The requester's other tickets the viewer may see, newest first (at most :limit), each row
-- with `matching`: how many there are, counted no further than :cap + 1 (a frequent requester
-- can have thousands). None: one row with `matching` 0 and no ticket (pid NULL). Both read
-- tickets_requester_email_newest_idx.
WITH others AS NOT MATERIALIZED (
    SELECT t.id, t.pid, t.subject, t.status, t.created_at
    FROM tickets t
    WHERE lower(t.requester_email) = lower(:requester_email) AND t.id <> :ticket_id
      AND (:viewer_sees_all OR t.assigned_to = :viewer_id
           OR (:viewer_sees_unassigned AND t.assigned_to IS NULL))
)
SELECT counted.matching, recent.pid, recent.subject, recent.status, recent.created_at
FROM (SELECT count(*) AS matching FROM (SELECT 1 FROM others LIMIT :cap + 1) AS c) AS counted
LEFT JOIN LATERAL (
    SELECT o.* FROM others o ORDER BY o.created_at DESC, o.id DESC LIMIT :limit
) AS recent ON true
ORDER BY recent.created_at DESC, recent.id DESC;

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
