-- depends: 0009_outbox_mailbox
-- Issue 21, shared DESIGN.md section 11: conversations with more than two people.

-- Each change to a ticket's participants is an event of its own.
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'PARTICIPANT_ADDED';
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'PARTICIPANT_REMOVED';

-- The people copied on a ticket besides its requester: To/Cc addresses of inbound mail that
-- are not ours, and those staff add. A participant's reply threads like the requester's; a
-- PUBLIC reply goes To the requester and Cc them. Addresses are kept lower-case, as mail
-- compares them; the same lenient shape as a requester's (0008: `root@intranet`).
CREATE TABLE ticket_participants (
    ticket_id   bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    email       text NOT NULL
                CONSTRAINT ticket_participants_email_shape
                CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
                       AND email = lower(email) AND length(email) <= 254),
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- The staff member who added them; NULL: read from an email's To/Cc.
    added_by    bigint REFERENCES users (id),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, email)
);
-- A customer's tickets as a participant (export and erasure, section 13).
CREATE INDEX ticket_participants_email_idx ON ticket_participants (email);

-- An email's Cc recipients, and the files it carries as MIME parts (read from storage when
-- it is sent, so the row stays small; files above EMAIL_ATTACHMENT_MAX_BYTES go as links in
-- the text instead).
ALTER TABLE email_outbox
    ADD COLUMN cc_addresses text[] NOT NULL DEFAULT '{}',
    ADD COLUMN attachment_ids bigint[] NOT NULL DEFAULT '{}';

-- The sanitized HTML (nh3) of an HTML email, beside full_body: served by
-- GET /api/tickets/{pid}/messages/{id}/original into a sandboxed frame.
ALTER TABLE ticket_messages ADD COLUMN html_body text;
