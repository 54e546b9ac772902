-- name: insert_audit<!
-- One row of the audit log (accounts/audit.py `record`); the log is append-only.
INSERT INTO audit_log (at, action, actor_id, subject, target_type, target_id, client_ip, request_id, data)
VALUES (:at, :action, :actor_id, :subject, :target_type, :target_id, :client_ip, :request_id, :data)
RETURNING id, at;
