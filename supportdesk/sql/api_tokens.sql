-- name: insert_api_token<!
-- A new API token of a user (its hash only; the token itself is shown once).
INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at, expires_at)
VALUES (:user_id, :name, :token_hash, :prefix, :now, :expires_at)
RETURNING *;

-- name: api_tokens_of*
-- A user's API tokens, newest first.
SELECT * FROM api_tokens WHERE user_id = :user_id ORDER BY id DESC;

-- name: delete_api_token^
-- Revoke one of a user's tokens (another user's is not found).
DELETE FROM api_tokens WHERE id = :id AND user_id = :user_id RETURNING *;

-- name: user_of_api_token^
-- The account behind an API token (every request made with one), with the token's own
-- columns; `session_revoked` is false: a token ends by being deleted, not logged out.
-- two_factor_on as user_of_session has it: REQUIRE_2FA_FOR holds a token to enrolment too.
SELECT u.*, false AS session_revoked, t.id AS api_token_id, t.expires_at AS api_token_expires_at,
       t.last_used_at AS api_token_last_used_at,
       EXISTS (SELECT 1 FROM two_factor f WHERE f.user_id = u.id AND f.enabled_at IS NOT NULL)
           AS two_factor_on
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = :token_hash;

-- name: touch_api_token!
-- When a token was last used: written at most once a minute per token (the caller checks
-- first, and the condition here keeps parallel requests from writing it twice).
UPDATE api_tokens SET last_used_at = :now
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < :now - interval '1 minute');
