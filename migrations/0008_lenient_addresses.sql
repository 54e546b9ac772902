-- depends: 0007_mailboxes
-- Issue 20, shared DESIGN.md section 6: mail is never refused for its content. Intranets send
-- from hosts without a dot (`root@intranet`, `Martin <redacted@redacted>`), so the addresses
-- that come by email (a ticket's requester, a message's author) and those we answer (the
-- outbox) may have a single-label host. Still sane: one @, something on each side, no white
-- space, at most 254 characters (supportdesk.core.text.MAIL_SHAPE is the same rule).
-- users.email keeps its dot: staff accounts are typed by people, not read from mail.

ALTER TABLE tickets DROP CONSTRAINT tickets_requester_email_shape;
ALTER TABLE tickets ADD CONSTRAINT tickets_requester_email_shape
    CHECK (requester_email ~ '^[^@[:space:]]+@[^@[:space:]]+$'
           AND length(requester_email) <= 254);

ALTER TABLE ticket_messages DROP CONSTRAINT ticket_messages_author_email_shape;
ALTER TABLE ticket_messages ADD CONSTRAINT ticket_messages_author_email_shape
    CHECK (author_email IS NULL
           OR (author_email ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(author_email) <= 254));

ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_to_address_shape;
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_to_address_shape
    CHECK (to_address ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(to_address) <= 254);
