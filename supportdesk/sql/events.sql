-- name: insert_event<!
-- One entry of a ticket's timeline (the table refuses updates and deletes).
INSERT INTO ticket_events (ticket_id, type, actor_id, data, created_at)
VALUES (:ticket_id, :type, :actor_id, :data, :created_at)
RETURNING *;

-- name: ticket_timeline*
-- Every event of a ticket, oldest first, with the actor's name.
SELECT e.*, u.name AS actor_name
FROM ticket_events e
LEFT JOIN users u ON u.id = e.actor_id
WHERE e.ticket_id = :ticket_id
ORDER BY e.id;  -- the order they were written in, under the ticket's lock
