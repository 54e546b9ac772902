-- depends: 0013_audit
-- Issue 22 (DESIGN.md section 12, finding things): a word of the message search that the
-- statistics of search_vector do not list was estimated at a share of the table as large as
-- the rarest word they do list. At the default statistics target (100) that was thousands
-- of messages at a million tickets, so for a word found in six tickets the planner walked
-- the tickets newest first, probing each one's messages, all million of them (5 s), instead
-- of reading the six from the GIN index (1 ms). A larger target keeps ten times as many
-- words in the statistics, so the rarest listed word, and with it the estimate of an
-- unlisted one, is far rarer; ANALYZE samples 300,000 rows for it (3.6 s at 4M messages).
ALTER TABLE ticket_messages ALTER COLUMN search_vector SET STATISTICS 1000;
