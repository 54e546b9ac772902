-- depends: 0012_close_notice
-- Issue 23, shared DESIGN.md section 13: accounts and data. This migration lays what every
-- part of it shares: the ERASED ticket event and the audit log. Each part adds its own
-- tables in a migration of its own (0014 two-factor, 0015 tokens and password reset,
-- 0016 webhooks, 0017 personal data), each depending on this one.

-- A customer's data was erased from the ticket (its data says what was removed, never whose).
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'ERASED';

-- What was done to accounts and data (supportdesk/accounts/audit.py names each action).
CREATE TYPE audit_action AS ENUM (
    'LOGIN',
    'LOGIN_FAILED',
    'LOGOUT',
    'TWO_FACTOR_ENABLED',
    'TWO_FACTOR_DISABLED',
    'TWO_FACTOR_RESET',
    'RECOVERY_CODE_USED',
    'PASSWORD_CHANGED',
    'PASSWORD_RESET_REQUESTED',
    'PASSWORD_RESET',
    'USER_CREATED',
    'ROLE_CHANGED',
    'USER_ACTIVATED',
    'USER_DEACTIVATED',
    'TOKEN_CREATED',
    'TOKEN_REVOKED',
    'MAILBOX_CREATED',
    'MAILBOX_UPDATED',
    'MAILBOX_DELETED',
    'MAILBOX_AUTHORIZED',
    'WEBHOOK_CREATED',
    'WEBHOOK_UPDATED',
    'WEBHOOK_DELETED',
    'CUSTOMER_EXPORTED',
    'CUSTOMER_ERASED',
    'TICKETS_PURGED'
);

-- Append-only for the app role, like ticket_events (supportdesk/core/migrate.py APPEND_ONLY).
-- actor_id: who did it (NULL: the system, or nobody known, as for a failed login, whose typed
-- address is kept in `subject`); target: what it was done to ('user' 42, 'mailbox' 3, ...).
-- No customer's address or name goes in here: an erasure names its customer by a keyed hash.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    action      audit_action NOT NULL,
    actor_id    bigint REFERENCES users (id),
    subject     text CHECK (length(subject) <= 254),
    target_type text CHECK (target_type ~ '^[a-z_]{1,30}$'),
    target_id   text,
    client_ip   inet,
    request_id  text,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    CONSTRAINT audit_log_target_whole CHECK ((target_type IS NULL) = (target_id IS NULL))
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC, id DESC);

-- Append-only even for the owner, as ticket_events is (0001_schema.sql).
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
