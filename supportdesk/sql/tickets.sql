-- name: take_pid_number$
-- The next PID number of a month; the row lock serializes creators until commit.
INSERT INTO pid_counters AS c (period, last_value)
VALUES (:period, 1)
ON CONFLICT (period) DO UPDATE SET last_value = c.last_value + 1
RETURNING last_value;

-- name: insert_ticket<!
-- A new ticket; its PID was taken in the same transaction.
INSERT INTO tickets (pid, subject, status, priority, requester_email, requester_name, channel,
                     assigned_to, created_at, updated_at)
VALUES (:pid, :subject, :status, :priority, :requester_email, :requester_name, :channel,
        :assigned_to, :created_at, :created_at)
RETURNING *;

-- name: ticket_by_pid^
-- The ticket with this PID, or nothing.
SELECT * FROM tickets WHERE pid = :pid;

-- name: insert_message<!
-- One message of a ticket's thread.
INSERT INTO ticket_messages (ticket_id, author, author_user_id, author_email, visibility,
                             channel, body, email_message_id, created_at)
VALUES (:ticket_id, :author, :author_user_id, :author_email, :visibility, :channel, :body,
        :email_message_id, :created_at)
RETURNING *;

-- name: insert_event<!
-- One entry of a ticket's timeline (the table refuses updates and deletes).
INSERT INTO ticket_events (ticket_id, type, actor_id, data, created_at)
VALUES (:ticket_id, :type, :actor_id, :data, :created_at)
RETURNING *;
