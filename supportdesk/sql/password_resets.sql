-- name: insert_password_reset<!
-- A reset link about to be emailed; the older ones of the user stop counting (only the
-- newest row of a user is honoured: password_reset_to_use).
INSERT INTO password_resets (user_id, token_version, created_at, expires_at)
VALUES (:user_id, :token_version, :now, :expires_at)
RETURNING id, user_id, expires_at;

-- name: forget_password_resets!
-- The user's reset rows that can no longer be used (expired, used, or older than the
-- newest): cleared whenever a new link is made, so a user keeps at most a few.
DELETE FROM password_resets
WHERE user_id = :user_id
  AND (expires_at < :now OR used_at IS NOT NULL
       OR id < (SELECT max(id) FROM password_resets WHERE user_id = :user_id));

-- name: password_reset_to_use^
-- The reset row a link names, locked with its user, if it is the user's newest: a newer
-- link ends the older ones. The caller checks its use, expiry and token_version.
SELECT r.id, r.user_id, r.token_version AS issued_version, r.expires_at, r.used_at,
       r.id = (SELECT max(id) FROM password_resets n WHERE n.user_id = r.user_id) AS newest,
       u.email, u.is_active, u.token_version, u.name, u.role
FROM password_resets r JOIN users u ON u.id = r.user_id
WHERE r.id = :id
FOR UPDATE;

-- name: use_password_reset!
-- A link used: never again.
UPDATE password_resets SET used_at = :now WHERE id = :id AND used_at IS NULL;

-- name: reset_password^
-- The new password of a reset: every session of the user ends (a new token_version).
UPDATE users
SET password_hash = :password_hash, token_version = token_version + 1, updated_at = :now
WHERE id = :id
RETURNING *;
