-- name: erase_customer$
-- Erase one customer's data, as the owner (migration 0017): the counts of what was erased.
SELECT privacy_erase_customer(:email, :actor_id);

-- name: purge_closed_tickets$
-- Purge up to `limit` CLOSED tickets last changed before `before`, as the owner (0017).
SELECT privacy_purge_closed_tickets(:before, :limit);

-- name: pending_file_deletions*
-- Files whose rows are gone, oldest first: to remove from storage.
SELECT storage_key FROM pending_file_deletions ORDER BY queued_at, storage_key LIMIT :limit;

-- name: forget_file_deletion!
-- Files removed from storage: nothing more to do for them.
DELETE FROM pending_file_deletions WHERE storage_key = ANY(:storage_keys);

-- name: customer_tickets*
-- The tickets of one address, as requester or as participant, oldest first.
-- options: no_prepare
SELECT t.*, (lower(t.requester_email) = :email) AS as_requester
FROM tickets t
WHERE lower(t.requester_email) = :email
   OR t.id IN (SELECT ticket_id FROM ticket_participants WHERE email = :email)
   OR t.id IN (SELECT ticket_id FROM ticket_messages
               WHERE lower(author_email) = :email AND author_email IS NOT NULL)
ORDER BY t.created_at, t.id;

-- name: export_messages*
-- A ticket's messages for its customer's export: every one on their own ticket; on another's,
-- the public ones (which they were sent) and their own.
SELECT m.id, m.author, m.author_email, u.name AS author_name, m.visibility, m.channel,
       m.body, m.full_body, m.html_body, m.created_at
FROM ticket_messages m
LEFT JOIN users u ON u.id = m.author_user_id
WHERE m.ticket_id = :ticket_id
  AND (:as_requester OR m.visibility = 'PUBLIC'
       OR (lower(m.author_email) = :email AND m.author_email IS NOT NULL))
ORDER BY m.created_at, m.id;

-- name: export_attachments*
-- The files of these messages.
SELECT id, message_id, filename, content_type, size_bytes, sha256, storage_key, created_at
FROM attachments WHERE message_id = ANY(:message_ids) ORDER BY id;

-- name: export_quarantine*
-- Mail from this address kept in the quarantine.
SELECT id, received_at, from_header, subject, reason, raw, raw_type
FROM quarantine WHERE position(:email IN lower(from_header)) > 0 ORDER BY id;
