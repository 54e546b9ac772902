-- name: insert_message<!
-- One message of a ticket's thread. Returns the columns ticket_thread reads: not the HTML
-- (up to megabytes), not the search_vector (of no use to the caller).
INSERT INTO ticket_messages (ticket_id, author, author_user_id, author_email, visibility,
                             channel, body, full_body, html_body, email_message_id, created_at,
                             matched_by_subject_only, sender_auth)
VALUES (:ticket_id, :author, :author_user_id, :author_email, :visibility, :channel, :body,
        :full_body, :html_body, :email_message_id, :created_at, :matched_by_subject_only,
        :sender_auth)
RETURNING id, ticket_id, author, author_user_id, author_email, visibility, channel, body,
          full_body, email_message_id, created_at, matched_by_subject_only, sender_auth,
          html_body IS NOT NULL AS html_available;

-- name: ticket_thread*
-- The messages of a ticket, oldest first, with the staff author's name or a participant's
-- (section 11: a person copied on the ticket who wrote, as long as they are copied), and
-- whether each has its HTML kept (the HTML itself, up to megabytes, is read alone:
-- message_html).
SELECT m.id, m.ticket_id, m.author, m.author_user_id, m.author_email, m.visibility,
       m.channel, m.body, m.full_body, m.email_message_id, m.created_at,
       m.matched_by_subject_only, m.sender_auth, m.html_body IS NOT NULL AS html_available,
       COALESCE(u.name, NULLIF(p.name, '')) AS author_name
FROM ticket_messages m
LEFT JOIN users u ON u.id = m.author_user_id
LEFT JOIN ticket_participants p
       ON p.ticket_id = m.ticket_id AND p.email = m.author_email AND m.author = 'CUSTOMER'
WHERE m.ticket_id = :ticket_id
ORDER BY m.created_at, m.id;

-- name: message_html$
-- The sanitized HTML of one message of a ticket, or nothing (no such message there, or
-- one without HTML).
SELECT html_body
FROM ticket_messages
WHERE id = :message_id AND ticket_id = :ticket_id AND html_body IS NOT NULL;

-- name: count_messages_after$
-- How many messages a ticket has received after the one with id :after (the collision
-- guard: someone wrote while the author was typing).
SELECT count(*) FROM ticket_messages WHERE ticket_id = :ticket_id AND id > :after;

-- name: thread_attachments*
-- The files of a ticket's messages, in the order they were added.
SELECT id, message_id, filename, content_type, size_bytes, created_at
FROM attachments
WHERE ticket_id = :ticket_id
ORDER BY id;

-- name: previous_public_message^
-- The latest PUBLIC message of a ticket before message :before_id (written at
-- :before_at), the customer's or staff's: what a reply quotes. With the name of who wrote
-- it: the staff member, the requester, a participant, else the address it came from.
SELECT m.body, m.created_at,
       CASE WHEN m.author = 'STAFF' THEN u.name
            WHEN m.author_email IS NULL
                 OR lower(m.author_email) = lower(t.requester_email) THEN t.requester_name
            ELSE coalesce(nullif(p.name, ''), m.author_email) END AS author_name
FROM ticket_messages m
JOIN tickets t ON t.id = m.ticket_id
LEFT JOIN users u ON u.id = m.author_user_id
LEFT JOIN ticket_participants p ON p.ticket_id = m.ticket_id AND p.email = lower(m.author_email)
WHERE m.ticket_id = :ticket_id AND m.visibility = 'PUBLIC'
  AND (m.created_at, m.id) < (:before_at, :before_id)
ORDER BY m.created_at DESC, m.id DESC
LIMIT 1;
