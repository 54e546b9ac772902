-- depends: 0013_audit
-- Issue 23 part 1 (DESIGN.md section 13): two-factor authentication for staff, TOTP (RFC
-- 6238) with one-time recovery codes (supportdesk/accounts/two_factor.py).

-- A staff member's TOTP secret. A row with enabled_at NULL is an enrolment started and not
-- confirmed yet: it changes nothing at login. The secret is sealed (Fernet, the key of the
-- mailbox secrets: core/secrets.py), never kept in clear. last_step is the RFC 6238 time
-- step of the last code accepted: a code of that step or an earlier one is refused, so a
-- code seen once cannot be used again (compared and set in one UPDATE).
CREATE TABLE two_factor (
    user_id       bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed text NOT NULL CONSTRAINT two_factor_secret_not_blank CHECK (secret_sealed <> ''),
    created_at    timestamptz NOT NULL DEFAULT now(),
    enabled_at    timestamptz,
    last_step     bigint CONSTRAINT two_factor_last_step_positive CHECK (last_step >= 0)
);

-- The ten recovery codes shown once at enrolment, kept as SHA-256 hashes (they are random,
-- 50 bits each: a slow hash adds nothing). A code works once: used_at is set in the UPDATE
-- that accepts it.
CREATE TABLE recovery_codes (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash text NOT NULL CONSTRAINT recovery_codes_hash_shape CHECK (code_hash ~ '^[0-9a-f]{64}$'),
    used_at   timestamptz,
    CONSTRAINT recovery_codes_unique UNIQUE (user_id, code_hash)
);
