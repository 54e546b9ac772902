-- name: insert_message<!
-- One message of a ticket's thread.
INSERT INTO ticket_messages (ticket_id, author, author_user_id, author_email, visibility,
                             channel, body, email_message_id, created_at)
VALUES (:ticket_id, :author, :author_user_id, :author_email, :visibility, :channel, :body,
        :email_message_id, :created_at)
RETURNING *;

-- name: ticket_thread*
-- The messages of a ticket, oldest first, with the staff author's name.
SELECT m.*, u.name AS author_name
FROM ticket_messages m
LEFT JOIN users u ON u.id = m.author_user_id
WHERE m.ticket_id = :ticket_id
ORDER BY m.created_at, m.id;
