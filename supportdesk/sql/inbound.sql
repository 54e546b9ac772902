-- name: received_message^
-- A message we already received by email, by its Message-ID (the same email twice).
SELECT m.id, m.ticket_id, t.pid
FROM ticket_messages m
JOIN tickets t ON t.id = m.ticket_id
WHERE m.email_message_id = :message_id;

-- name: ticket_of_message_ids^
-- The ticket of the first of these Message-IDs (nearest first) that we sent or received.
SELECT t.*
FROM (
    SELECT ticket_id, email_message_id AS message_id FROM ticket_messages
    WHERE email_message_id = ANY(:ids::text[])
    UNION ALL
    SELECT ticket_id, message_id FROM email_outbox
    WHERE message_id = ANY(:ids::text[]) AND ticket_id IS NOT NULL
) AS known
JOIN tickets t ON t.id = known.ticket_id
ORDER BY array_position(:ids::text[], known.message_id)
LIMIT 1;

-- name: ticket_by_pid^
-- One ticket by its PID, whoever asks (inbound email checks its sender itself).
SELECT * FROM tickets WHERE pid = :pid;

-- name: lock_ticket^
-- A ticket locked for a change, whoever asks (the caller checked who may: a change made by
-- email, a take).
SELECT * FROM tickets WHERE id = :id FOR UPDATE;
