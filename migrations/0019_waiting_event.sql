-- depends: 0018_search_statistics
-- Issue 22 (DESIGN.md section 12, Time): setting or clearing the moment a WAITING ticket
-- returns to OPEN is a change like any other, so the timeline shows who set it, and to what.
ALTER TYPE ticket_event_type ADD VALUE IF NOT EXISTS 'WAITING_UNTIL_SET';
