-- depends: 0005_search
-- Issue 18: an email that joined its ticket by a [#PID] in its subject alone, with no
-- reply header or signed token of ours, may come from anyone who knows the number (the
-- From line is anyone's to write). It is kept, marked, and changes nothing else: no
-- reopening, no notice. Staff see the mark on the message.
ALTER TABLE ticket_messages
    ADD COLUMN matched_by_subject_only boolean NOT NULL DEFAULT false;
