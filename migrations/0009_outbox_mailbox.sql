-- depends: 0008_lenient_addresses
-- Issue 20, shared DESIGN.md section 10: a ticket's emails go out from its mailbox. The
-- outbox row names the mailbox whose address it was written From (decided when queued);
-- the worker sends it through that mailbox's own SMTP server when it has one at send time,
-- else through the global one. A mailbox deleted later leaves its emails to the global
-- server, From as they were written.
ALTER TABLE email_outbox
    ADD COLUMN mailbox_id bigint REFERENCES mailboxes (id) ON DELETE SET NULL;
