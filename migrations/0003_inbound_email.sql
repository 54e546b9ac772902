-- depends: 0002_outbox_delivery
-- Inbound email (DESIGN.md section 6): a reply is shown without its quoted history, and
-- the whole text is kept beside it.
ALTER TABLE ticket_messages ADD COLUMN full_body text;
-- Threading looks up a Message-ID among what we sent (email_outbox.message_id, already
-- unique) and what we received (ticket_messages.email_message_id, already unique).
