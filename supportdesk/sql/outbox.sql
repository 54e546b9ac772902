-- name: insert_outbox_email<!
-- An email to send, written in the transaction that decided to send it.
INSERT INTO email_outbox (ticket_id, ticket_message_id, to_address, subject, body_text,
                          body_html, message_id, in_reply_to, "references", headers,
                          created_at, updated_at)
VALUES (:ticket_id, :ticket_message_id, :to_address, :subject, :body_text, :body_html,
        :message_id, :in_reply_to, :references, :headers, :created_at, :created_at)
RETURNING id, message_id;
