-- name: oauth_mailbox^
-- One mailbox as the OAuth flow and the token refresh read it.
SELECT * FROM mailboxes WHERE id = :id;

-- name: lock_oauth_mailbox^
-- The mailbox, locked until the transaction ends: one refresh at a time per mailbox, so a
-- refresh token rotated by one process is read, not overwritten, by the next.
SELECT * FROM mailboxes WHERE id = :id FOR UPDATE;

-- name: store_access_token!
-- A refreshed access token, and the refresh token when the provider rotated it (NULL: the
-- one stored stays).
UPDATE mailboxes
SET access_token_encrypted = :access_token, access_token_expires_at = :expires_at,
    secret_encrypted = coalesce(:refresh_token, secret_encrypted), updated_at = :now
WHERE id = :id;

-- name: store_authorization^
-- The tokens of a completed authorization: the mailbox is connected (OK) again.
UPDATE mailboxes
SET secret_encrypted = :refresh_token, access_token_encrypted = :access_token,
    access_token_expires_at = :expires_at, status = 'OK', last_error = NULL,
    updated_at = :now
WHERE id = :id AND auth = 'OAUTH2'
RETURNING *;

-- name: mark_reauthorize!
-- The provider refused the refresh token: fetching and sending pause until an ADMIN
-- connects the mailbox again. The access token goes with it.
UPDATE mailboxes
SET status = 'REAUTHORIZE', last_error = :error, access_token_encrypted = NULL,
    access_token_expires_at = NULL, updated_at = :now
WHERE id = :id;

-- name: mailboxes_to_reauthorize*
-- The active mailboxes waiting for an ADMIN to connect them again (/healthz).
SELECT id, address, last_error, updated_at
FROM mailboxes
WHERE status = 'REAUTHORIZE' AND is_active
ORDER BY id;

-- name: active_admins*
-- Whom a mailbox alert is emailed to.
SELECT id, name, email FROM users WHERE role = 'ADMIN' AND is_active ORDER BY id;
