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
-- The conversation of every ticket this transaction seeded above :after_id: the customer's
-- first message, a staff reply, the customer's answer and a last staff message (a reply, or
-- for one ticket in four an INTERNAL note), spread between the ticket's creation and its
-- last change. Staff write as the assignee, else as one of :staff (none: the customer's two
-- messages only). The bodies name nothing of the subject's vocabulary but its own words:
-- "screenshot" is in a large share of the tickets (the common word of `make bench-tickets`),
-- "kerberos" in the tickets whose id is a multiple of :rare_every (the rare one); order and
-- reference numbers make many distinct words, as real mail does.
-- `xmin` is this transaction's id only on rows it wrote itself: a ticket that another
-- session commits meanwhile, with an id above :after_id, is not given a second message.
INSERT INTO ticket_messages (ticket_id, author, author_user_id, author_email, visibility,
                             channel, body, created_at)
SELECT t.id, m.author::message_author,
       CASE WHEN m.author = 'STAFF'
            THEN coalesce(t.assigned_to,
                          (:staff::bigint[])[1 + (t.id % greatest(cardinality(:staff::bigint[]), 1))::integer])
       END,
       CASE WHEN m.author = 'CUSTOMER' THEN t.requester_email END,
       CASE WHEN m.n = 4 AND t.id % 4 = 0 THEN 'INTERNAL' ELSE 'PUBLIC' END::message_visibility,
       CASE WHEN m.author = 'CUSTOMER' THEN t.channel ELSE 'WEB' END::message_channel,
       CASE m.n
       WHEN 1 THEN
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
           || E'\n' || t.requester_name
       WHEN 2 THEN
           'Hello ' || split_part(t.requester_name, ' ', 1) || E',\n\n'
           || (ARRAY['Thanks for reporting this. Could you send us a screenshot of what you see,'
                     || ' and the version shown under Settings, About?',
                     'Thank you for the details. Could you attach a screenshot of the error'
                     || ' message? It helps us find the right log entry.',
                     'Thank you for getting in touch. I have passed this on to our engineers'
                     || ' and will update you as soon as I hear back.',
                     'Sorry for the trouble. Please clear the browser cache, sign in again and'
                     || ' tell me whether it still happens.',
                     'Thanks! I can reproduce it here and have opened an internal bug report.'
                     || ' I will keep you posted.',
                     'I have checked your account settings and corrected them. Could you try'
                     || ' again and confirm that it works now?'])
               [1 + ((t.id / 7) % 6)::integer]
           || E'\n\nBest regards,\nSupport'
       WHEN 3 THEN
           (ARRAY['Here is the screenshot you asked for. The version is '
                     || (t.id % 9) || '.' || (t.id % 23) || '.' || (t.id % 7) || '.',
                  'I tried that, but it still happens. Our reference is REF-'
                     || (t.id * 7919 % 1000003) || '.',
                  'It works again now, thank you!',
                  'Sorry for the late answer, I was out of office. It still happens with order '
                     || (100000 + t.id * 31 % 900000) || '.',
                  'Any news on this? My manager is asking.',
                  'I cleared the cache and signed in again: no change. The browser console'
                     || ' shows a warning about a blocked request.'])
               [1 + ((t.id / 11) % 6)::integer]
           || CASE WHEN t.id % :rare_every = 0
                   THEN ' We sign in through Kerberos, in case that matters.' ELSE '' END
           || E'\n\n' || split_part(t.requester_name, ' ', 1)
       ELSE
           CASE WHEN t.id % 4 = 0 THEN
               (ARRAY['Checked the logs: timeouts on the sync worker at that time. Asked'
                         || ' engineering.',
                      'Customer is on the legacy plan, check with billing before promising'
                         || ' anything.',
                      'Same issue as last week, probably the cache bug. Linked it to the bug'
                         || ' report.',
                      'Escalated to second level support.'])
                   [1 + ((t.id / 13) % 4)::integer]
           ELSE
               (ARRAY['Our engineers deployed a fix this morning. Could you check whether it'
                         || ' works for you now?',
                      'Glad to hear it works again. I will close this ticket; just reply if'
                         || ' anything comes up.',
                      'We are still working on it. Thank you for your patience.',
                      'I have sent you the details by email. Let me know if anything is'
                         || ' unclear.'])
                   [1 + ((t.id / 17) % 4)::integer]
               || E'\n\nBest regards,\nSupport'
           END
       END,
       t.created_at + (t.updated_at - t.created_at) * (m.n - 1) / 3
FROM tickets t
CROSS JOIN (VALUES (1, 'CUSTOMER'), (2, 'STAFF'), (3, 'CUSTOMER'), (4, 'STAFF')) AS m (n, author)
WHERE t.id > :after_id AND t.xmin = pg_current_xact_id()::xid
  AND (m.author = 'CUSTOMER' OR cardinality(:staff::bigint[]) > 0)
ORDER BY t.id, m.n;

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
