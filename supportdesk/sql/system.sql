-- name: ping$
-- Whether the database answers (health check).
SELECT 1 AS ok;

-- name: try_advisory_lock$
-- This session becomes the one holder of the two-key advisory lock, if no one else is: held
-- until released or the connection ends (core/session_locks.py).
SELECT pg_try_advisory_lock((:namespace)::integer, (:key)::integer);

-- name: release_advisory_lock$
-- This session lets go of a two-key advisory lock it holds.
SELECT pg_advisory_unlock((:namespace)::integer, (:key)::integer);

-- name: lock_session_alive$
-- The connection that holds the locks still answers (a lost one has released them).
SELECT 1;
