-- depends: 0013_audit
-- Issue 23, shared DESIGN.md section 13: password reset by email and API tokens.

-- The reset email is a kind of its own: it goes to a staff member, outside any ticket.
ALTER TYPE email_kind ADD VALUE IF NOT EXISTS 'PASSWORD_RESET';

-- One row per reset link sent (supportdesk/accounts/password_resets.py). The link signs the
-- row's id, the user and its expiry with SECRET_KEY; the row makes it single-use (used_at),
-- lets a newer link end the older ones (only a user's newest row is honoured), and keeps
-- the user's token_version at issue, so that a password change since (which bumps it) ends
-- the link. Nothing secret is stored here.
CREATE TABLE password_resets (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_version integer NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    CONSTRAINT password_resets_expiry_after_creation CHECK (expires_at > created_at)
);
CREATE INDEX password_resets_user_idx ON password_resets (user_id, id DESC);

-- Personal API tokens (supportdesk/accounts/api_tokens.py): `sd_pat_<secret>`, shown once,
-- stored as the SHA-256 of the whole token. A revoked token's row is deleted (the audit log
-- keeps TOKEN_REVOKED). `prefix` is what the list shows to tell tokens apart.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL
                 CONSTRAINT api_tokens_name_not_blank
                 CHECK (btrim(name) <> '' AND length(name) <= 100),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_tokens_expiry_after_creation CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, id);
