-- name: insert_audit<!
-- One row of the audit log (accounts/audit.py `record`); the log is append-only.
INSERT INTO audit_log (at, action, actor_id, subject, target_type, target_id, client_ip, request_id, data)
VALUES (:at, :action, :actor_id, :subject, :target_type, :target_id, :client_ip, :request_id, :data)
RETURNING id, at;

-- name: audit_page*
-- One page of the audit log, newest first, after the row :after_at/:after_id (keyset: no
-- OFFSET over a table that grows without bound), with the actor's name and email.
-- :before is exclusive. NULL filters are off.
-- options: no_prepare
SELECT a.id, a.at, a.action::text AS action, a.actor_id, u.name AS actor_name,
       u.email AS actor_email, a.subject, a.target_type, a.target_id,
       abbrev(a.client_ip) AS client_ip, a.request_id, a.data
FROM audit_log a
LEFT JOIN users u ON u.id = a.actor_id
WHERE (:actor_id::bigint IS NULL OR a.actor_id = :actor_id::bigint)
  AND (:actions::audit_action[] IS NULL OR a.action = ANY(:actions::audit_action[]))
  AND (:since::timestamptz IS NULL OR a.at >= :since::timestamptz)
  AND (:before::timestamptz IS NULL OR a.at < :before::timestamptz)
  AND (:after_at::timestamptz IS NULL
       OR (a.at, a.id) < (:after_at::timestamptz, :after_id::bigint))
ORDER BY a.at DESC, a.id DESC
LIMIT :limit;
