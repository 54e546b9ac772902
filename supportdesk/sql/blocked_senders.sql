-- name: blocking_pattern$
-- The pattern that blocks a sender, if any: :patterns is the address and its @domains
-- (tickets/spam.py `patterns_of`), so each is one look-up in the unique index.
SELECT pattern FROM blocked_senders WHERE pattern = ANY(:patterns) ORDER BY length(pattern) DESC LIMIT 1;

-- name: block_sender<!
-- Block an address or @domain; nothing when it is blocked already.
INSERT INTO blocked_senders (pattern, created_by, created_at)
VALUES (:pattern, :created_by, :now)
ON CONFLICT (pattern) DO NOTHING
RETURNING id, pattern, created_by, created_at;

-- name: blocked_sender_by_pattern^
-- One blocked pattern, with who blocked it.
SELECT b.id, b.pattern, b.created_by, b.created_at, u.name AS created_by_name
FROM blocked_senders b
LEFT JOIN users u ON u.id = b.created_by
WHERE b.pattern = :pattern;

-- name: list_blocked_senders*
-- Every blocked pattern, with who blocked it, newest first.
SELECT b.id, b.pattern, b.created_by, b.created_at, u.name AS created_by_name
FROM blocked_senders b
LEFT JOIN users u ON u.id = b.created_by
ORDER BY b.created_at DESC, b.id DESC;

-- name: unblock_sender$
-- Remove one blocked pattern: its id, or nothing when there is no such row.
DELETE FROM blocked_senders WHERE id = :id RETURNING id;

-- name: own_address_blocked_by^
-- An active staff member's or one of our mailboxes' address that :pattern (an address, or
-- @domain, which covers its subdomains) would block, if any: mail from our own people
-- must never go to the quarantine.
WITH own AS (
    SELECT lower(email) AS address, name FROM users WHERE is_active
    UNION ALL
    SELECT lower(address), display_name FROM mailboxes
)
SELECT address, name
FROM own
WHERE CASE WHEN left(:pattern::text, 1) = '@'
           THEN split_part(address, '@', 2) = substr(:pattern::text, 2)
                OR right(split_part(address, '@', 2), length(:pattern::text)) = '.' || substr(:pattern::text, 2)
           ELSE address = :pattern::text
      END
ORDER BY address
LIMIT 1;
