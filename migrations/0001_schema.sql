-- The whole data model of DESIGN.md section 3: seven tables, every closed set as an enum.
-- Timestamps are timestamptz in UTC. No soft deletes. ticket_events is append-only.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TYPE user_role AS ENUM ('ADMIN', 'SUB_ADMIN', 'AGENT');
CREATE TYPE ticket_status AS ENUM ('OPEN', 'IN_PROGRESS', 'WAITING', 'RESOLVED', 'CLOSED');
CREATE TYPE ticket_priority AS ENUM ('LOW', 'NORMAL', 'HIGH', 'URGENT');
CREATE TYPE message_author AS ENUM ('CUSTOMER', 'STAFF', 'SYSTEM');
CREATE TYPE message_visibility AS ENUM ('PUBLIC', 'INTERNAL');
CREATE TYPE message_channel AS ENUM ('WEB', 'EMAIL', 'API');
CREATE TYPE ticket_event_type AS ENUM (
    'CREATED', 'ASSIGNED', 'UNASSIGNED', 'STATUS_CHANGED', 'PRIORITY_CHANGED',
    'MESSAGE_ADDED', 'NOTE_ADDED', 'ATTACHMENT_ADDED',
    'EMAIL_QUEUED', 'EMAIL_SENT', 'EMAIL_FAILED', 'EMAIL_RECEIVED'
);
CREATE TYPE outbox_status AS ENUM ('PENDING', 'SENDING', 'SENT', 'FAILED', 'DEAD');

-- Staff accounts. Customers are not users: they are the requester of a ticket.
CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text NOT NULL
                    CONSTRAINT users_email_shape
                    CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'
                           AND length(email) <= 254),
    name            text NOT NULL
                    CONSTRAINT users_name_not_blank
                    CHECK (btrim(name) <> '' AND length(name) <= 200),
    role            user_role NOT NULL,
    password_hash   text NOT NULL CONSTRAINT users_password_hash_not_blank CHECK (password_hash <> ''),
    is_active       boolean NOT NULL DEFAULT true,
    -- Bumped on password change and deactivation: tokens carrying an older value stop working.
    token_version   integer NOT NULL DEFAULT 0 CONSTRAINT users_token_version_positive
                    CHECK (token_version >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One row per UTC month: the last PID number handed out that month (DESIGN.md section 4).
CREATE TABLE pid_counters (
    period      text PRIMARY KEY
                CONSTRAINT pid_counters_period_shape
                CHECK (period ~ '^[0-9]{4}(0[1-9]|1[0-2])$'),
    last_value  integer NOT NULL CONSTRAINT pid_counters_last_value_positive
                CHECK (last_value >= 1)
);

CREATE TABLE tickets (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pid              text NOT NULL UNIQUE
                     CONSTRAINT tickets_pid_shape CHECK (pid ~ '^[0-9]{4}(0[1-9]|1[0-2])-[0-9]{5,}$'),
    subject          text NOT NULL
                     CONSTRAINT tickets_subject_not_blank
                     CHECK (btrim(subject) <> '' AND length(subject) <= 255),
    status           ticket_status NOT NULL DEFAULT 'OPEN',
    priority         ticket_priority NOT NULL DEFAULT 'NORMAL',
    requester_email  text NOT NULL
                     CONSTRAINT tickets_requester_email_shape
                     CHECK (requester_email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'
                            AND length(requester_email) <= 254),
    requester_name   text NOT NULL
                     CONSTRAINT tickets_requester_name_not_blank
                     CHECK (btrim(requester_name) <> '' AND length(requester_name) <= 200),
    channel          message_channel NOT NULL,
    assigned_to      bigint REFERENCES users (id),
    -- A reply to a CLOSED ticket opens a new ticket that links the old one.
    follows_up_id    bigint REFERENCES tickets (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tickets_not_own_follow_up CHECK (follows_up_id IS NULL OR follows_up_id <> id)
);
-- The ticket list: newest first, alone or under every combination of the status, priority
-- and assignee filters (an AGENT's list is always filtered by assignee).
CREATE INDEX tickets_newest_idx ON tickets (created_at DESC, id DESC);
CREATE INDEX tickets_status_newest_idx ON tickets (status, created_at DESC, id DESC);
CREATE INDEX tickets_priority_newest_idx ON tickets (priority, created_at DESC, id DESC);
CREATE INDEX tickets_assignee_newest_idx ON tickets (assigned_to, created_at DESC, id DESC);
CREATE INDEX tickets_assignee_status_newest_idx
    ON tickets (assigned_to, status, created_at DESC, id DESC);
CREATE INDEX tickets_status_priority_newest_idx
    ON tickets (status, priority, created_at DESC, id DESC);
CREATE INDEX tickets_assignee_priority_newest_idx
    ON tickets (assigned_to, priority, created_at DESC, id DESC);
CREATE INDEX tickets_assignee_status_priority_newest_idx
    ON tickets (assigned_to, status, priority, created_at DESC, id DESC);
-- `q`: case-insensitive substring search over subject and requester, as one text so that a
-- search is one index scan (and a ticket insert updates one trigram index, not two).
CREATE INDEX tickets_search_trgm_idx ON tickets
    USING gin (lower(subject || ' ' || requester_name || ' ' || requester_email) gin_trgm_ops);
CREATE INDEX tickets_follows_up_idx ON tickets (follows_up_id) WHERE follows_up_id IS NOT NULL;

-- The conversation. Foreign keys to tickets are deferrable so that a creating transaction
-- can write the ticket's children first and take the PID counter last (DESIGN.md section 4).
CREATE TABLE ticket_messages (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id         bigint NOT NULL REFERENCES tickets (id) DEFERRABLE INITIALLY DEFERRED,
    author            message_author NOT NULL,
    author_user_id    bigint REFERENCES users (id),
    author_email      text CONSTRAINT ticket_messages_author_email_shape
                      CHECK (author_email IS NULL
                             OR author_email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    visibility        message_visibility NOT NULL DEFAULT 'PUBLIC',
    channel           message_channel NOT NULL,
    body              text NOT NULL CONSTRAINT ticket_messages_body_not_blank CHECK (btrim(body) <> ''),
    -- The RFC 5322 Message-ID of an inbound email: the same email posted twice is stored once.
    email_message_id  text UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ticket_messages_staff_has_user
        CHECK ((author = 'STAFF') = (author_user_id IS NOT NULL)),
    CONSTRAINT ticket_messages_internal_is_staff
        CHECK (visibility = 'PUBLIC' OR author = 'STAFF')
);
CREATE INDEX ticket_messages_thread_idx ON ticket_messages (ticket_id, created_at, id);

-- The timeline: what happened, by whom, with the details in `data`.
CREATE TABLE ticket_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets (id) DEFERRABLE INITIALLY DEFERRED,
    type        ticket_event_type NOT NULL,
    actor_id    bigint REFERENCES users (id),
    data        jsonb NOT NULL DEFAULT '{}'::jsonb
                CONSTRAINT ticket_events_data_is_object CHECK (jsonb_typeof(data) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_events_timeline_idx ON ticket_events (ticket_id, created_at, id);

CREATE FUNCTION ticket_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ticket_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ticket_events_append_only
    BEFORE UPDATE OR DELETE ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION ticket_events_refuse_change();
CREATE TRIGGER ticket_events_no_truncate
    BEFORE TRUNCATE ON ticket_events
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_events_refuse_change();

-- Files attached to a message; the bytes live in the storage backend under storage_key.
CREATE TABLE attachments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id     bigint NOT NULL REFERENCES tickets (id) DEFERRABLE INITIALLY DEFERRED,
    message_id    bigint NOT NULL REFERENCES ticket_messages (id) DEFERRABLE INITIALLY DEFERRED,
    filename      text NOT NULL
                  CONSTRAINT attachments_filename_not_blank
                  CHECK (btrim(filename) <> '' AND length(filename) <= 255),
    content_type  text NOT NULL
                  CONSTRAINT attachments_content_type_shape
                  CHECK (content_type ~ '^[a-z0-9.+-]+/[a-z0-9.+-]+$'),
    size_bytes    bigint NOT NULL CONSTRAINT attachments_size_not_negative CHECK (size_bytes >= 0),
    sha256        text NOT NULL CONSTRAINT attachments_sha256_shape CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    storage_key   text NOT NULL UNIQUE
                  CONSTRAINT attachments_storage_key_not_blank CHECK (storage_key <> ''),
    url           text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_message_idx ON attachments (message_id);
CREATE INDEX attachments_ticket_idx ON attachments (ticket_id);

-- The transactional outbox: every email we must send, written in the transaction that
-- decided to send it, delivered by the worker (DESIGN.md section 6).
CREATE TABLE email_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id        bigint REFERENCES tickets (id) DEFERRABLE INITIALLY DEFERRED,
    ticket_message_id bigint REFERENCES ticket_messages (id) DEFERRABLE INITIALLY DEFERRED,
    to_address       text NOT NULL
                     CONSTRAINT email_outbox_to_address_shape
                     CHECK (to_address ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    subject          text NOT NULL CONSTRAINT email_outbox_subject_not_blank CHECK (btrim(subject) <> ''),
    body_text        text NOT NULL,
    body_html        text,
    -- Stable across retries, so that a rare resend is recognisable.
    message_id       text NOT NULL UNIQUE
                     CONSTRAINT email_outbox_message_id_shape CHECK (message_id ~ '^<[^<>@]+@[^<>@]+>$'),
    in_reply_to      text,
    "references"     text,
    -- Further headers, e.g. {"Auto-Submitted": "auto-replied"}.
    headers          jsonb NOT NULL DEFAULT '{}'::jsonb
                     CONSTRAINT email_outbox_headers_is_object CHECK (jsonb_typeof(headers) = 'object'),
    status           outbox_status NOT NULL DEFAULT 'PENDING',
    attempts         integer NOT NULL DEFAULT 0 CONSTRAINT email_outbox_attempts_not_negative
                     CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT email_outbox_sent_has_time CHECK ((status = 'SENT') = (sent_at IS NOT NULL)),
    CONSTRAINT email_outbox_dead_has_error CHECK (status <> 'DEAD' OR last_error IS NOT NULL)
);
-- The sweeper's work: rows not yet delivered, oldest first.
CREATE INDEX email_outbox_undelivered_idx ON email_outbox (created_at, id)
    WHERE status IN ('PENDING', 'SENDING', 'FAILED');
-- The admin's view of what could not be delivered.
CREATE INDEX email_outbox_dead_idx ON email_outbox (updated_at DESC) WHERE status = 'DEAD';
CREATE INDEX email_outbox_ticket_idx ON email_outbox (ticket_id) WHERE ticket_id IS NOT NULL;
