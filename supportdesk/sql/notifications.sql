-- Notifications to staff (DESIGN.md section 12): who wants which notice, who follows a
-- ticket, and each staff member's own preferences. Whether a recipient may see the ticket
-- is decided in Python (tickets/access.py may_see), on the rows these return.

-- name: staff_wanting_new_tickets*
-- The active staff who asked to be told of every new ticket.
SELECT * FROM users WHERE is_active AND notify_new_ticket ORDER BY id;

-- name: ticket_follower_ids*
-- The ids of the staff following a ticket (active or not: the caller decides).
SELECT user_id FROM ticket_followers WHERE ticket_id = :ticket_id ORDER BY user_id;

-- name: users_by_ids*
-- Staff accounts by id (the candidates of one notice).
SELECT * FROM users WHERE id = ANY(:ids) ORDER BY id;

-- name: active_staff_named*
-- The active staff whose email, or whose email's local part (the login name of a mention),
-- is one of :names (lower-case): the people an internal note mentions.
SELECT * FROM users
WHERE is_active
  AND (lower(email) = ANY(:names) OR lower(split_part(email, '@', 1)) = ANY(:names))
ORDER BY id;

-- name: customer_reply_notice_since$
-- Whether a customer-reply notice to :to_address about the ticket was queued at or after
-- :since and may still arrive (not DEAD): a burst of replies is told once. Other notices
-- (a mention, a new ticket) do not count; a notice queued before they were told apart by
-- their header counts as one.
SELECT EXISTS (
    SELECT 1 FROM email_outbox
    WHERE ticket_id = :ticket_id AND kind = 'NOTICE' AND to_address = :to_address
      AND created_at >= :since AND status <> 'DEAD'
      AND coalesce(headers ->> 'X-Support-Desk-Notice', 'customer-reply') = 'customer-reply'
);

-- name: follow_ticket!
-- A staff member follows a ticket (again: nothing changes).
INSERT INTO ticket_followers (ticket_id, user_id, created_at)
VALUES (:ticket_id, :user_id, :now)
ON CONFLICT (ticket_id, user_id) DO NOTHING;

-- name: unfollow_ticket!
-- A staff member stops following a ticket (not following: nothing changes).
DELETE FROM ticket_followers WHERE ticket_id = :ticket_id AND user_id = :user_id;

-- name: is_following$
-- Whether a staff member follows a ticket.
SELECT EXISTS (
    SELECT 1 FROM ticket_followers WHERE ticket_id = :ticket_id AND user_id = :user_id
);

-- name: notification_preferences^
-- What a staff member wants mailed.
SELECT notify_new_ticket, notify_customer_reply, notify_assigned, notify_mentioned
FROM users WHERE id = :id;

-- name: set_notification_preferences^
-- Replace what a staff member wants mailed; the four as they are now.
UPDATE users
SET notify_new_ticket = :new_ticket, notify_customer_reply = :customer_reply,
    notify_assigned = :assigned, notify_mentioned = :mentioned
WHERE id = :id
RETURNING notify_new_ticket, notify_customer_reply, notify_assigned, notify_mentioned;
