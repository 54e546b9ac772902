-- depends: 0003_inbound_email
-- Logged-out sessions (issue 10): kept in PostgreSQL, so that a logout holds even when Redis
-- is flushed or restarts without persistence. A row can go once its token has expired.
CREATE TABLE revoked_sessions (
    jti        text PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_sessions_expires_at_idx ON revoked_sessions (expires_at);
-- Logouts made before this migration were kept in Redis only, and are no longer read: end
-- every session once, so that none of them comes back to life.
UPDATE users SET token_version = token_version + 1;
