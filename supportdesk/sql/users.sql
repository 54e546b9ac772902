-- name: insert_user<!
-- A new staff account; the email is unique regardless of case.
INSERT INTO users (email, name, role, password_hash, is_active)
VALUES (:email, :name, :role, :password_hash, :is_active)
RETURNING *;

-- name: user_by_id^
-- One staff account by id.
SELECT * FROM users WHERE id = :id;
