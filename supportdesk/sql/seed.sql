-- Demo and benchmark data (`supportdesk seed`). The tickets themselves are streamed in with
-- COPY by supportdesk/dev/seed.py; these queries surround that bulk load. No `%` may appear
-- inside a string literal here: psycopg would read it as a placeholder.

-- name: max_ticket_id$
-- The highest ticket id so far: the tickets seeded next are the ones above it.
SELECT coalesce(max(id), 0) FROM tickets;

-- name: check_constraints_now!
-- The deferred foreign keys of messages and events are checked as each statement ends, not
-- all at commit, so the commit is quick and the PID counters are released right after the
-- last month is written.
SET CONSTRAINTS ALL IMMEDIATE;

-- name: reserve_pid_numbers$
-- Take :count PID numbers at once for month :period, continuing its counter; returns the
-- month's new last value. The counter row stays locked until the seeding transaction ends,
-- so the month's numbers stay gapless and a rollback gives them all back.
INSERT INTO pid_counters AS c (period, last_value)
VALUES (:period, :count)
ON CONFLICT (period) DO UPDATE SET last_value = c.last_value + excluded.last_value
RETURNING last_value;

-- name: insert_seeded_messages!
-- The customer's first message of every ticket this transaction seeded above :after_id.
-- `xmin` is this transaction's id only on rows it wrote itself: a ticket that another
-- session commits meanwhile, with an id above :after_id, is not given a second message.
INSERT INTO ticket_messages (ticket_id, author, author_email, visibility, channel, body,
                             created_at)
SELECT t.id, 'CUSTOMER', t.requester_email, 'PUBLIC', t.channel,
       (ARRAY['Hello,', 'Hi,', 'Hi there,', 'Good morning,', 'Dear support team,'])
           [1 + (t.id % 5)::integer]
       || E'\n\n' || t.subject
       || CASE WHEN right(t.subject, 1) IN ('.', '?', '!') THEN ' ' ELSE '. ' END
       || (ARRAY['It started this morning and logging out and in again did not help.',
                 'It happens every time, on two different computers.',
                 'A colleague of mine sees exactly the same thing.',
                 'It worked fine until last week and nothing changed on our side.',
                 'Tell me what details you need and I will send them right away.',
                 'This is blocking our month-end work, so a quick answer would be great.',
                 'I checked the help centre first but found nothing about it.'])
           [1 + ((t.id / 5) % 7)::integer]
       || E'\n\n'
       || (ARRAY['Thanks,', 'Best regards,', 'Kind regards,', 'Cheers,'])
           [1 + ((t.id / 35) % 4)::integer]
       || E'\n' || t.requester_name,
       t.created_at
FROM tickets t
WHERE t.id > :after_id AND t.xmin = pg_current_xact_id()::xid
ORDER BY t.id;

-- name: insert_seeded_events!
-- The CREATED event of every ticket this transaction seeded above :after_id (the same rows
-- as above), with the data TicketService.create records.
INSERT INTO ticket_events (ticket_id, type, actor_id, data, created_at)
SELECT t.id, 'CREATED', NULL,
       jsonb_build_object(
           'channel', t.channel,
           'requester', jsonb_build_object('email', t.requester_email,
                                           'name', t.requester_name),
           'priority', t.priority),
       t.created_at
FROM tickets t
WHERE t.id > :after_id AND t.xmin = pg_current_xact_id()::xid
ORDER BY t.id;

-- name: vacuum_seeded_tables!
-- After the bulk load, outside any transaction: fresh planner statistics, the visibility map
-- set (index-only counts), hint bits written once, the GIN pending lists merged.
VACUUM (ANALYZE) tickets, ticket_messages, ticket_events;
