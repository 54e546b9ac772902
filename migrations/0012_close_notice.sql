-- depends: 0011_shared_inbox
-- Issue 22 part 5 (DESIGN.md section 12, Time): the notice a customer gets when the
-- scheduler closes their RESOLVED ticket after AUTO_CLOSE_AFTER without activity. It goes
-- to the customer (audience CUSTOMER in supportdesk/core/vocabulary.py) and is part of the
-- email conversation, so a reply to it threads, and opens a new ticket linking the old.

ALTER TYPE email_kind ADD VALUE IF NOT EXISTS 'CLOSE_NOTICE';
