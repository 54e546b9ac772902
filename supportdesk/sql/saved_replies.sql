-- name: saved_replies_for*
-- The saved replies a staff member may use: the shared ones, then their own, by title.
SELECT r.*, u.name AS created_by_name
FROM saved_replies r
JOIN users u ON u.id = r.created_by
WHERE r.owner_id IS NULL OR r.owner_id = :staff_id
ORDER BY r.owner_id IS NOT NULL, lower(r.title), r.id;

-- name: saved_reply_for^
-- One saved reply if the staff member may use it (shared, or their own); else None.
SELECT r.*, u.name AS created_by_name
FROM saved_replies r
JOIN users u ON u.id = r.created_by
WHERE r.id = :id AND (r.owner_id IS NULL OR r.owner_id = :staff_id);

-- name: lock_saved_reply_for^
-- The same saved reply, locked for a change or a deletion.
SELECT r.*
FROM saved_replies r
WHERE r.id = :id AND (r.owner_id IS NULL OR r.owner_id = :staff_id)
FOR UPDATE;

-- name: insert_saved_reply<!
-- A new saved reply: shared when owner_id is NULL.
INSERT INTO saved_replies (title, body, owner_id, created_by, created_at, updated_at)
VALUES (:title, :body, :owner_id, :created_by, :now, :now)
RETURNING id;

-- name: update_saved_reply!
-- Change a saved reply's title, body and owner (NULL: shared).
UPDATE saved_replies
SET title = :title, body = :body, owner_id = :owner_id, updated_at = :now
WHERE id = :id;

-- name: delete_saved_reply!
-- Delete a saved reply.
DELETE FROM saved_replies WHERE id = :id;
