-- depends: 0006_subject_matches
-- Issue 20, shared DESIGN.md sections 6 and 10: the company's own mailboxes over IMAP, the
-- sender authentication verdict on each inbound message, and the quarantine for mail with
-- no usable sender.

CREATE TYPE mail_security AS ENUM ('SSL', 'STARTTLS', 'NONE');  -- NONE: development only
CREATE TYPE mailbox_auth AS ENUM ('PASSWORD', 'OAUTH2');
CREATE TYPE oauth_provider AS ENUM ('MICROSOFT', 'GOOGLE', 'CUSTOM');
-- NEW: never connected. OK: the last connection worked. ERROR: the last one failed (the
-- fetcher retries with backoff; last_error says why). REAUTHORIZE: the OAuth provider
-- refused the refresh token: fetching pauses until an ADMIN connects it again.
CREATE TYPE mailbox_status AS ENUM ('NEW', 'OK', 'ERROR', 'REAUTHORIZE');
CREATE TYPE sender_auth AS ENUM ('pass', 'fail', 'none');

CREATE TABLE mailboxes (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address             text NOT NULL
                        CONSTRAINT mailboxes_address_shape
                        CHECK (address ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'
                               AND address = lower(address) AND length(address) <= 254),
    display_name        text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    imap_host           text NOT NULL CHECK (btrim(imap_host) <> '' AND length(imap_host) <= 253),
    imap_port           integer NOT NULL CHECK (imap_port BETWEEN 1 AND 65535),
    imap_security       mail_security NOT NULL DEFAULT 'SSL',
    imap_folder         text NOT NULL DEFAULT 'INBOX' CHECK (btrim(imap_folder) <> ''),
    auth                mailbox_auth NOT NULL DEFAULT 'PASSWORD',
    username            text NOT NULL CHECK (btrim(username) <> '' AND length(username) <= 254),
    -- Fernet tokens (supportdesk.mail.mailboxes.secrets): the IMAP password, or the OAuth
    -- refresh token; never returned by the API.
    secret_encrypted    text,
    oauth_provider      oauth_provider,
    -- The current OAuth access token (encrypted) and when it expires: refreshed ahead.
    access_token_encrypted text,
    access_token_expires_at timestamptz,
    -- Optional: this address's mail goes out through its own SMTP server; else the global one.
    smtp_host           text CHECK (smtp_host IS NULL OR btrim(smtp_host) <> ''),
    smtp_port           integer CHECK (smtp_port IS NULL OR smtp_port BETWEEN 1 AND 65535),
    smtp_security       mail_security,
    smtp_username       text,
    -- The SMTP password when auth = 'PASSWORD' and it differs from the IMAP one (NULL: the
    -- IMAP password); OAUTH2 mailboxes use the same access token for SMTP.
    smtp_secret_encrypted text,
    processed           text NOT NULL DEFAULT 'MARK_SEEN'
                        CONSTRAINT mailboxes_processed_shape
                        CHECK (processed = 'MARK_SEEN' OR processed ~ '^MOVE:.+$'),
    backfill_days       integer NOT NULL DEFAULT 0 CHECK (backfill_days BETWEEN 0 AND 365),
    -- The authserv-ids whose Authentication-Results this mailbox's provider writes.
    trusted_authserv_ids text[] NOT NULL DEFAULT '{}',
    is_active           boolean NOT NULL DEFAULT true,
    status              mailbox_status NOT NULL DEFAULT 'NEW',
    last_error          text,
    last_fetch_at       timestamptz,
    -- Where fetching stands: advanced in the transaction that stores each message.
    uidvalidity         bigint,
    last_uid            bigint NOT NULL DEFAULT 0,
    -- When backfill_days was applied (once, on the first connection).
    backfilled_at       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mailboxes_oauth_has_provider
        CHECK ((auth = 'OAUTH2') = (oauth_provider IS NOT NULL)),
    CONSTRAINT mailboxes_smtp_whole
        CHECK ((smtp_host IS NULL) = (smtp_port IS NULL)
               AND (smtp_host IS NULL) = (smtp_security IS NULL))
);
CREATE UNIQUE INDEX mailboxes_address_idx ON mailboxes (address);

-- Every ticket remembers the mailbox it came in on; replies go out from its address. NULL:
-- MAIL_FROM, the default mailbox. Deleting a mailbox only stops fetching: its tickets stay
-- and answer from MAIL_FROM.
ALTER TABLE tickets ADD COLUMN mailbox_id bigint REFERENCES mailboxes (id) ON DELETE SET NULL;
CREATE INDEX tickets_mailbox_idx ON tickets (mailbox_id) WHERE mailbox_id IS NOT NULL;

-- DMARC alignment of an inbound message's sender (section 10); 'none' for what did not come
-- by email, or came with nothing to judge it by.
ALTER TABLE ticket_messages ADD COLUMN sender_auth sender_auth NOT NULL DEFAULT 'none';

-- Mail kept but not turned into a ticket (section 6): no usable sender address at all, or a
-- blocked sender (section 12). The raw message is kept so that an ADMIN can open a ticket
-- from it.
CREATE TABLE quarantine (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    mailbox_id      bigint REFERENCES mailboxes (id) ON DELETE SET NULL,
    -- The From header as it came (possibly garbage), and the subject, for the list.
    from_header     text NOT NULL DEFAULT '',
    subject         text NOT NULL DEFAULT '',
    reason          text NOT NULL CHECK (btrim(reason) <> ''),
    email_message_id text UNIQUE,
    -- The message as received: an RFC 5322 message, or the webhook's JSON body.
    raw             bytea NOT NULL,
    raw_type        text NOT NULL CHECK (raw_type IN ('message/rfc822', 'application/json')),
    sender_auth     sender_auth NOT NULL DEFAULT 'none'
);
CREATE INDEX quarantine_newest_idx ON quarantine (received_at DESC, id DESC);
