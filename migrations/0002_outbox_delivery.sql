-- depends: 0001_schema
-- What the worker needs to send an outbox row exactly as it was decided, and what the
-- admin's Outbox page shows (DESIGN.md section 6).

-- What kind of email a row is: the thread of a staff reply is built from the customer-facing
-- kinds only, and the timeline names the kind of a sent or failed email. A closed set, so
-- an enum like every other (DESIGN.md section 3).
CREATE TYPE email_kind AS ENUM ('ACKNOWLEDGEMENT', 'REPLY', 'ASSIGNMENT', 'NOTICE');
ALTER TABLE email_outbox ADD COLUMN kind email_kind;
UPDATE email_outbox
SET kind = CASE WHEN headers ->> 'Auto-Submitted' = 'auto-replied' THEN 'ACKNOWLEDGEMENT'
                ELSE 'ASSIGNMENT' END::email_kind;
ALTER TABLE email_outbox ALTER COLUMN kind SET NOT NULL;

-- From (with the company's name) and Reply-To, stored with the row like the rest of the
-- email. NULL only on rows written before this migration: the worker then uses MAIL_FROM.
ALTER TABLE email_outbox ADD COLUMN from_address text;
ALTER TABLE email_outbox ADD COLUMN reply_to text;
-- When the last attempt started (the Outbox page; a SENDING row's age).
ALTER TABLE email_outbox ADD COLUMN last_attempt_at timestamptz;
-- The worker that took a SENDING row: only that worker's death lets the sweeper hand the
-- row on, never a stray copy of its id elsewhere.
ALTER TABLE email_outbox ADD COLUMN claimed_by text;
ALTER TABLE email_outbox
    ADD CONSTRAINT email_outbox_failed_has_retry
        CHECK (status <> 'FAILED' OR next_attempt_at IS NOT NULL);

-- The Outbox page: one status at a time, newest first.
CREATE INDEX email_outbox_status_idx ON email_outbox (status, id DESC);
-- The thread of a ticket's emails (References of a staff reply).
CREATE INDEX email_outbox_ticket_thread_idx ON email_outbox (ticket_id, created_at, id)
    WHERE ticket_id IS NOT NULL;
DROP INDEX email_outbox_ticket_idx;
