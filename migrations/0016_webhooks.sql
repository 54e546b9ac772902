-- depends: 0013_audit
-- Issue 23, shared DESIGN.md section 13: outgoing webhooks. An ADMIN registers a target URL,
-- the events it wants and a signing secret; each change of a ticket that one wants writes a
-- delivery row in the change's own transaction (supportdesk/webhooks/events.py), which the
-- worker sends through the same reliable queue design as email (section 6).

-- What a webhook may ask to be told of (supportdesk/core/vocabulary.py WEBHOOK_EVENTS).
CREATE TYPE webhook_event AS ENUM (
    'ticket.created',
    'message.created',
    'ticket.status_changed',
    'ticket.assigned'
);

CREATE TABLE webhooks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- http(s) only; checked against private, loopback and link-local targets when it is
    -- registered and again when each delivery connects (supportdesk/webhooks/targets.py).
    url              text NOT NULL
                     CONSTRAINT webhooks_url_shape CHECK (url ~ '^https?://' AND length(url) <= 2000),
    events           webhook_event[] NOT NULL
                     CONSTRAINT webhooks_events_not_empty CHECK (cardinality(events) > 0),
    -- A Fernet token (supportdesk.mail.mailboxes.secrets): the HMAC key of X-Signature,
    -- never returned by the API.
    secret_encrypted text NOT NULL,
    active           boolean NOT NULL DEFAULT true,
    created_by       bigint REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- Which webhooks want an event: read in every transaction that changes a ticket.
CREATE INDEX webhooks_events_idx ON webhooks USING gin (events) WHERE active;

-- One event for one webhook: the body is fixed when the change commits (the payload), and
-- sent, retried, or given up on like an email_outbox row (the same statuses and columns).
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event            webhook_event NOT NULL,
    -- A purged ticket (RETENTION_AFTER) takes its deliveries along: their payloads hold its
    -- requester and its messages.
    ticket_id        bigint REFERENCES tickets (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    payload          jsonb NOT NULL
                     CONSTRAINT webhook_deliveries_payload_is_object
                     CHECK (jsonb_typeof(payload) = 'object'),
    status           outbox_status NOT NULL DEFAULT 'PENDING',
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz,
    last_attempt_at  timestamptz,
    last_error       text,
    -- The receiver's HTTP status of the last attempt (NULL: no answer at all).
    response_status  integer,
    claimed_by       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_sent_has_time CHECK ((status = 'SENT') = (sent_at IS NOT NULL)),
    CONSTRAINT webhook_deliveries_dead_has_error CHECK (status <> 'DEAD' OR last_error IS NOT NULL),
    CONSTRAINT webhook_deliveries_failed_has_retry
        CHECK (status <> 'FAILED' OR next_attempt_at IS NOT NULL)
);
-- The sweeper's work: deliveries not yet done, oldest first.
CREATE INDEX webhook_deliveries_undelivered_idx ON webhook_deliveries (created_at, id)
    WHERE status IN ('PENDING', 'SENDING', 'FAILED');
-- A webhook's recent deliveries, newest first (the API and the admin page).
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);
CREATE INDEX webhook_deliveries_ticket_idx ON webhook_deliveries (ticket_id)
    WHERE ticket_id IS NOT NULL;
