-- name: quarantine_email<!
-- Keep an email that opens no ticket (DESIGN.md section 6); nothing when its Message-ID is
-- already kept (the same email twice is stored once).
INSERT INTO quarantine (mailbox_id, from_header, subject, reason, email_message_id, raw,
                        raw_type, sender_auth)
VALUES (:mailbox_id, :from_header, :subject, :reason, :email_message_id, :raw, :raw_type,
        :sender_auth)
ON CONFLICT (email_message_id) DO NOTHING
RETURNING id, reason;

-- name: quarantined_message^
-- The kept email with this Message-ID, if any (a duplicate of one already kept).
SELECT id, reason FROM quarantine WHERE email_message_id = :message_id;

-- name: list_quarantine*
-- A page of the quarantine, newest first (without the raw email).
SELECT id, received_at, from_header, subject, reason, raw_type, mailbox_id, sender_auth
FROM quarantine
ORDER BY received_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: count_quarantine$
-- How many emails are kept, counted up to :cap + 1.
SELECT count(*) FROM (SELECT 1 FROM quarantine LIMIT :cap + 1) AS kept;

-- name: quarantined_for_ticket^
-- One kept email, raw included, locked while a ticket is opened from it.
SELECT * FROM quarantine WHERE id = :id FOR UPDATE;

-- name: discard_quarantined!
-- Remove one kept email (discarded, or opened as a ticket).
DELETE FROM quarantine WHERE id = :id;
