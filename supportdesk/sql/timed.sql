-- Time (DESIGN.md section 12): what the scheduler's jobs read and write. Each job lists a
-- bounded batch of candidates, then changes each in a short transaction of its own after
-- locking its row and checking again (tickets/timed.py).

-- name: stale_resolved_ticket_ids*
-- RESOLVED tickets with no activity since :cutoff, the longest-quiet first (tickets_resolved_idx).
SELECT id FROM tickets
WHERE status = 'RESOLVED' AND updated_at <= :cutoff
ORDER BY updated_at, id
LIMIT :batch;

-- name: waited_ticket_ids*
-- WAITING tickets whose `waiting_until` has come (tickets_waiting_until_idx).
SELECT id FROM tickets
WHERE waiting_until <= :now
ORDER BY waiting_until, id
LIMIT :batch;

-- name: lock_ticket_by_id^
-- One ticket, locked until the end of the transaction (the job's check runs under it).
SELECT * FROM tickets WHERE id = :id FOR UPDATE;

-- name: resolved_since$
-- When the ticket last became RESOLVED (its latest STATUS_CHANGED to RESOLVED); None if no
-- event says so (a ticket resolved by a path that wrote none).
SELECT max(created_at) FROM ticket_events
WHERE ticket_id = :ticket_id AND type = 'STATUS_CHANGED' AND data ->> 'to' = 'RESOLVED';

-- name: set_waiting_until<!
-- The moment a WAITING ticket returns to OPEN, or None: no such moment.
UPDATE tickets SET waiting_until = :waiting_until, updated_at = :now
WHERE id = :id
RETURNING *;
