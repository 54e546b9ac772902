-- name: insert_user<!
-- A new staff account; the email is unique regardless of case.
INSERT INTO users (email, name, role, password_hash, is_active)
VALUES (:email, :name, :role, :password_hash, :is_active)
RETURNING *;

-- name: user_by_id^
-- One staff account by id.
SELECT * FROM users WHERE id = :id;

-- name: lock_users*
-- Staff accounts locked until the end of the transaction that changes one of them, always
-- in id order so that two such transactions cannot deadlock.
SELECT * FROM users WHERE id = ANY(:ids) ORDER BY id FOR UPDATE;

-- name: user_by_email^
-- One staff account by email, regardless of case.
SELECT * FROM users WHERE lower(email) = lower(:email);

-- name: all_users*
-- Every staff account, active ones first, by name.
SELECT * FROM users ORDER BY is_active DESC, lower(name), id;

-- name: active_users*
-- The staff a ticket can be assigned to.
SELECT * FROM users WHERE is_active ORDER BY lower(name), id;

-- name: lock_active_admin_ids*
-- The active ADMINs, locked: two admins demoting each other at once cannot both succeed.
SELECT id FROM users WHERE role = 'ADMIN' AND is_active ORDER BY id FOR UPDATE;

-- name: count_users$
-- How many staff accounts exist (the dev set seeds one admin when there are none).
SELECT count(*) FROM users;

-- name: update_user<!
-- Apply a change to a staff account; a new token_version ends its sessions.
UPDATE users
SET name = :name, role = :role, is_active = :is_active, password_hash = :password_hash,
    token_version = :token_version, updated_at = now()
WHERE id = :id
RETURNING *;

-- name: share_lock_users*
-- Staff accounts that a change relies on (the actor, an assignee), share-locked in id order:
-- they cannot be deactivated or demoted until that change commits.
SELECT * FROM users WHERE id = ANY(:ids) ORDER BY id FOR SHARE;

-- name: user_of_session^
-- The account behind a session, and whether that session was logged out (every request).
-- two_factor_on: whether two-factor is on (REQUIRE_2FA_FOR lets a covered user without it
-- only enrol: accounts/two_factor.py).
SELECT u.*, EXISTS (SELECT 1 FROM revoked_sessions r WHERE r.jti = :jti) AS session_revoked,
       EXISTS (SELECT 1 FROM two_factor t WHERE t.user_id = u.id AND t.enabled_at IS NOT NULL)
           AS two_factor_on
FROM users u WHERE u.id = :id;

-- name: revoke_session!
-- A logout: the session's token stops working (until it would have expired anyway).
INSERT INTO revoked_sessions (jti, user_id, expires_at)
VALUES (:jti, :user_id, :expires_at)
ON CONFLICT (jti) DO NOTHING;

-- name: forget_expired_sessions!
-- Revocations of tokens that have expired by now protect nothing: cleared at each logout.
DELETE FROM revoked_sessions WHERE expires_at < :now;

-- name: set_password_hash!
-- A password rehashed at the configured cost on login (the same password: sessions stay);
-- only if the hash is still the one checked, so that a change meanwhile is never undone.
UPDATE users SET password_hash = :password_hash WHERE id = :id AND password_hash = :old_hash;

-- name: open_tickets_of*
-- How many tickets that are not resolved or closed each of these staff members holds
-- (deactivating someone leaves theirs assigned).
SELECT assigned_to AS user_id, count(*) AS open_tickets
FROM tickets
WHERE assigned_to = ANY(:ids) AND status NOT IN ('RESOLVED', 'CLOSED')
GROUP BY assigned_to;
