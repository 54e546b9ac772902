-- name: lock_visible_tickets*
-- The tickets of a bulk action that the viewer may see, with their assignee and mailbox as
-- visible_ticket gives them, locked in PID order (two bulk actions over the same tickets
-- wait for each other, never deadlock); a PID out of reach is simply not returned.
SELECT t.*, u.name AS assignee_name, u.email AS assignee_email,
       u.is_active AS assignee_active, mb.address AS mailbox_address
FROM tickets t
LEFT JOIN users u ON u.id = t.assigned_to
LEFT JOIN mailboxes mb ON mb.id = t.mailbox_id
WHERE t.pid = ANY(:pids)
  AND (:viewer_sees_all OR t.assigned_to = :viewer_id
       OR (:viewer_sees_unassigned AND t.assigned_to IS NULL))
ORDER BY t.pid
FOR UPDATE OF t;
