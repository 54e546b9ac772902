-- name: lock_tickets_in_order*
-- The tickets of a merge, locked in id order: two merges of the same pair, either way round,
-- wait for each other instead of deadlocking. Each row as it is once its lock is held.
SELECT * FROM tickets WHERE id = ANY(:ids::bigint[]) ORDER BY id FOR UPDATE;

-- name: merge_target_of^
-- The ticket a merged ticket's chain ends at: followed through merged_into_id, at most
-- :depth steps (merges refuse cycles; the bound keeps a corrupted chain from looping).
WITH RECURSIVE chain (id, merged_into_id, depth) AS (
    SELECT id, merged_into_id, 0 FROM tickets WHERE id = :id
    UNION ALL
    SELECT t.id, t.merged_into_id, c.depth + 1
    FROM chain c JOIN tickets t ON t.id = c.merged_into_id
    WHERE c.depth < :depth
)
SELECT t.*
FROM chain c JOIN tickets t ON t.id = c.id
WHERE c.merged_into_id IS NULL;

-- name: move_messages$
-- Every message of the source to the target; how many moved.
WITH moved AS (
    UPDATE ticket_messages SET ticket_id = :target_id WHERE ticket_id = :source_id RETURNING 1
)
SELECT count(*) FROM moved;

-- name: move_attachments$
-- Every file of the source to the target (the files stay where they are stored); how many.
WITH moved AS (
    UPDATE attachments SET ticket_id = :target_id WHERE ticket_id = :source_id RETURNING 1
)
SELECT count(*) FROM moved;

-- name: copy_participants_to_target*
-- The people of the source (its participants, and its requester as :requester_email, NULL
-- when it is the target's own) copied on the target, skipping the target's requester and
-- those already there; returns those added.
INSERT INTO ticket_participants (ticket_id, email, name, added_by, added_at)
SELECT :target_id, people.email, people.name, :added_by, :now
FROM (
    SELECT email, name, 1 AS rank FROM ticket_participants WHERE ticket_id = :source_id
    UNION ALL
    SELECT lower(:requester_email::text), :requester_name::text, 0
    WHERE :requester_email::text IS NOT NULL
) AS people
WHERE people.email <> lower(:target_requester)
ORDER BY people.rank, people.email
ON CONFLICT (ticket_id, email) DO NOTHING
RETURNING email, name;

-- name: drop_participants!
-- The source's participants, once copied on the target (mail to the source lands there).
DELETE FROM ticket_participants WHERE ticket_id = :ticket_id;

-- name: copy_followers!
-- Staff following the source follow the target too.
INSERT INTO ticket_followers (ticket_id, user_id, created_at)
SELECT :target_id, user_id, :now FROM ticket_followers WHERE ticket_id = :source_id
ON CONFLICT (ticket_id, user_id) DO NOTHING;

-- name: mark_merged<!
-- The source, merged: CLOSED (no waiting_until, which only a WAITING ticket carries) and
-- pointing at its target.
UPDATE tickets
SET merged_into_id = :target_id, status = 'CLOSED', waiting_until = NULL, updated_at = :now
WHERE id = :id
RETURNING *;

-- name: message_of_ticket^
-- One message of a ticket (NULL for a message of another ticket), with how many messages
-- the ticket has.
SELECT m.id, m.ticket_id, m.author, m.author_email, m.visibility, m.channel, m.body,
       m.created_at,
       (SELECT count(*) FROM ticket_messages o WHERE o.ticket_id = m.ticket_id) AS in_thread
FROM ticket_messages m
WHERE m.id = :message_id AND m.ticket_id = :ticket_id;

-- name: move_message!
-- One message, and its files, to another ticket.
WITH files AS (
    UPDATE attachments SET ticket_id = :target_id WHERE message_id = :message_id
)
UPDATE ticket_messages SET ticket_id = :target_id WHERE id = :message_id;

-- name: participant_name$
-- The name a participant of a ticket was copied under ('' when none, NULL when not one).
SELECT name FROM ticket_participants WHERE ticket_id = :ticket_id AND email = lower(:email);
