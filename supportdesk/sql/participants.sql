-- name: ticket_participants*
-- The people copied on a ticket besides its requester, in the order they joined.
SELECT email, name, added_by, added_at
FROM ticket_participants
WHERE ticket_id = :ticket_id
ORDER BY added_at, email;

-- name: insert_participant^
-- Copy one person on a ticket; None when they already are.
INSERT INTO ticket_participants (ticket_id, email, name, added_by, added_at)
VALUES (:ticket_id, :email, :name, :added_by, :added_at)
ON CONFLICT (ticket_id, email) DO NOTHING
RETURNING email, name, added_by, added_at;

-- name: delete_participant^
-- Stop copying one person; None when they were not.
DELETE FROM ticket_participants
WHERE ticket_id = :ticket_id AND email = :email
RETURNING email, name, added_by, added_at;

-- name: is_participant$
-- Whether the address is copied on the ticket (it then threads like the requester's).
SELECT EXISTS (
    SELECT 1 FROM ticket_participants WHERE ticket_id = :ticket_id AND email = lower(:email)
);
