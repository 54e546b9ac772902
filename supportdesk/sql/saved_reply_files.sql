-- name: saved_reply_files_of*
-- The files of these saved replies, oldest first.
SELECT * FROM saved_reply_files
WHERE saved_reply_id = ANY(:reply_ids::bigint[])
ORDER BY saved_reply_id, id;

-- name: count_saved_reply_files$
-- How many files a saved reply holds (read under its lock, before more are added).
SELECT count(*) FROM saved_reply_files WHERE saved_reply_id = :reply_id;

-- name: insert_saved_reply_file<!
-- A stored file of a saved reply, written after the file is stored.
INSERT INTO saved_reply_files (saved_reply_id, filename, content_type, size_bytes, sha256,
                               storage_key, created_at)
VALUES (:reply_id, :filename, :content_type, :size_bytes, :sha256, :storage_key, :now)
RETURNING *;

-- name: delete_saved_reply_file^
-- Remove one file of a saved reply; its storage key (None: no such file of that reply).
DELETE FROM saved_reply_files WHERE id = :id AND saved_reply_id = :reply_id
RETURNING storage_key;

-- name: delete_saved_reply_files*
-- Remove every file of a saved reply (before the reply itself); their storage keys.
DELETE FROM saved_reply_files WHERE saved_reply_id = :reply_id
RETURNING storage_key;

-- name: usable_saved_reply_file^
-- One file of a saved reply the staff member may use (shared, or their own); else None.
SELECT f.*
FROM saved_reply_files f
JOIN saved_replies r ON r.id = f.saved_reply_id
WHERE f.id = :id AND f.saved_reply_id = :reply_id
  AND (r.owner_id IS NULL OR r.owner_id = :staff_id);

-- name: usable_saved_reply_files*
-- Those of these files whose saved reply the staff member may use, by id.
SELECT f.*
FROM saved_reply_files f
JOIN saved_replies r ON r.id = f.saved_reply_id
WHERE f.id = ANY(:ids::bigint[]) AND (r.owner_id IS NULL OR r.owner_id = :staff_id)
ORDER BY f.id;
