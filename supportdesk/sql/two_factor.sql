-- name: two_factor_of^
-- A staff member's two-factor state: the sealed secret, whether it is on, the last step.
SELECT * FROM two_factor WHERE user_id = :user_id;

-- name: lock_two_factor^
-- The same, locked until the end of a transaction that turns it on or off.
SELECT * FROM two_factor WHERE user_id = :user_id FOR UPDATE;

-- name: start_two_factor!
-- An enrolment (a fresh secret, not on yet), replacing one started before; never an
-- enrolment that is on (the service refuses that first: an UPDATE here would swap the secret).
INSERT INTO two_factor (user_id, secret_sealed, created_at)
VALUES (:user_id, :secret_sealed, :now)
ON CONFLICT (user_id) DO UPDATE
SET secret_sealed = EXCLUDED.secret_sealed, created_at = EXCLUDED.created_at,
    enabled_at = NULL, last_step = NULL
WHERE two_factor.enabled_at IS NULL;

-- name: enable_two_factor!
-- Turn a started enrolment on, with the step of the code that confirmed it as used.
UPDATE two_factor SET enabled_at = :now, last_step = :step
WHERE user_id = :user_id AND enabled_at IS NULL;

-- name: accept_totp_step$
-- A code of `step` accepted, once: only if no code of this step or a later one was accepted
-- before (one UPDATE: two requests with the same code cannot both pass). The user's id, or
-- nothing for a replay.
UPDATE two_factor SET last_step = :step
WHERE user_id = :user_id AND enabled_at IS NOT NULL AND (last_step IS NULL OR last_step < :step)
RETURNING user_id;

-- name: remove_two_factor!
-- Two-factor off (by its owner, or reset by an ADMIN): the secret and the recovery codes go.
WITH codes AS (DELETE FROM recovery_codes WHERE user_id = :user_id)
DELETE FROM two_factor WHERE user_id = :user_id;

-- name: remove_recovery_codes!
-- The recovery codes of an enrolment, before its new ones are stored.
DELETE FROM recovery_codes WHERE user_id = :user_id;

-- name: insert_recovery_code!
-- One recovery code, hashed.
INSERT INTO recovery_codes (user_id, code_hash) VALUES (:user_id, :code_hash);

-- name: use_recovery_code$
-- A recovery code spent: only if it is this user's and unused (one UPDATE: it works once).
-- The code's id, or nothing.
UPDATE recovery_codes SET used_at = :now
WHERE user_id = :user_id AND code_hash = :code_hash AND used_at IS NULL
RETURNING id;

-- name: recovery_codes_left$
-- How many recovery codes a staff member has not used.
SELECT count(*) FROM recovery_codes WHERE user_id = :user_id AND used_at IS NULL;
