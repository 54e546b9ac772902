-- depends: 0010_conversations
-- Issue 22, shared DESIGN.md section 12: the shared inbox.

ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'MERGED_INTO';
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'MERGED_FROM';
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'SPLIT_TO';
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'SPLIT_FROM';
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'SPAM';
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'AUTO_CLOSED';

-- Notifications (each through the outbox, Auto-Submitted: auto-generated): what each staff
-- member wants mailed. Assignment and customer replies were always mailed in v1: on by
-- default; a new ticket to everyone would flood a team: off by default.
ALTER TABLE users
    ADD COLUMN notify_new_ticket boolean NOT NULL DEFAULT false,
    ADD COLUMN notify_customer_reply boolean NOT NULL DEFAULT true,
    ADD COLUMN notify_assigned boolean NOT NULL DEFAULT true,
    ADD COLUMN notify_mentioned boolean NOT NULL DEFAULT true;

-- Staff following a ticket: told of its customer replies like its assignee.
CREATE TABLE ticket_followers (
    ticket_id   bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, user_id)
);
CREATE INDEX ticket_followers_user_idx ON ticket_followers (user_id);

-- Saved replies: shared (owner_id NULL, managed by ADMIN and SUB_ADMIN) or personal (their
-- owner's alone). The body is a template rendered in Jinja's sandbox.
CREATE TABLE saved_replies (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL CHECK (btrim(title) <> '' AND length(title) <= 200),
    body        text NOT NULL CHECK (btrim(body) <> '' AND length(body) <= 50000),
    owner_id    bigint REFERENCES users (id) ON DELETE CASCADE,
    created_by  bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saved_replies_owner_idx ON saved_replies (owner_id, lower(title));

-- Merge: the source ticket is CLOSED and points at its target, so mail threaded to it lands
-- there (followed to the end of a chain; cycles are refused when merging).
ALTER TABLE tickets ADD COLUMN merged_into_id bigint REFERENCES tickets (id);
ALTER TABLE tickets ADD CONSTRAINT tickets_not_merged_into_itself
    CHECK (merged_into_id IS NULL OR merged_into_id <> id);
CREATE INDEX tickets_merged_into_idx ON tickets (merged_into_id) WHERE merged_into_id IS NOT NULL;

-- Time: a WAITING ticket may carry the moment it returns to OPEN; the scheduler finds the
-- due ones, and the RESOLVED ones to auto-close, by these partial indexes.
ALTER TABLE tickets ADD COLUMN waiting_until timestamptz;
ALTER TABLE tickets ADD CONSTRAINT tickets_waiting_until_only_waiting
    CHECK (waiting_until IS NULL OR status = 'WAITING');
CREATE INDEX tickets_waiting_until_idx ON tickets (waiting_until) WHERE waiting_until IS NOT NULL;
CREATE INDEX tickets_resolved_idx ON tickets (updated_at) WHERE status = 'RESOLVED';

-- Finding things: message text by PostgreSQL full-text search ('simple': no stemming, any
-- language), a generated tsvector with a GIN index.
ALTER TABLE ticket_messages ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED;
CREATE INDEX ticket_messages_search_idx ON ticket_messages USING gin (search_vector);

-- Spam: mail from a blocked sender (an address, or @domain) goes to the quarantine.
CREATE TABLE blocked_senders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pattern     text NOT NULL
                CONSTRAINT blocked_senders_pattern_shape
                CHECK ((pattern ~ '^[^@[:space:]]+@[^@[:space:]]+$'
                        OR pattern ~ '^@[^@[:space:]]+$')
                       AND pattern = lower(pattern) AND length(pattern) <= 254),
    created_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX blocked_senders_pattern_idx ON blocked_senders (pattern);
