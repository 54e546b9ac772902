-- name: insert_attachment<!
-- A stored file of a message, written in the transaction that writes the message.
INSERT INTO attachments (ticket_id, message_id, filename, content_type, size_bytes, sha256,
                         storage_key, url, created_at)
VALUES (:ticket_id, :message_id, :filename, :content_type, :size_bytes, :sha256,
        :storage_key, :url, :created_at)
RETURNING *;

-- name: visible_attachment^
-- One attachment, if the viewer may see its ticket (the visibility rule of tickets).
SELECT a.*
FROM attachments a
JOIN tickets t ON t.id = a.ticket_id
WHERE a.id = :id
  AND (:viewer_sees_all OR t.assigned_to = :viewer_id
       OR (:viewer_sees_unassigned AND t.assigned_to IS NULL));

-- name: attachment_by_id^
-- One attachment, whoever asks (a signed link was checked first).
SELECT * FROM attachments WHERE id = :id;

-- name: stored_keys*
-- Which of these storage keys have their row, an attachment's or a saved reply's file's (the
-- orphan sweep keeps those).
SELECT storage_key FROM attachments WHERE storage_key = ANY(:keys::text[])
UNION ALL
SELECT storage_key FROM saved_reply_files WHERE storage_key = ANY(:keys::text[]);
