-- name: ping$
-- Whether the database answers (health check).
SELECT 1 AS ok;
