-- depends: 0004_revoked_sessions
-- Search (issue 10). The list's text search reads one stored, lowercased text per ticket:
-- lower() of the concatenation, evaluated per row while walking the newest-first index, cost
-- about 12 microseconds a row (a locale-aware lower()), so a word found only among older
-- tickets took tens of milliseconds; a stored column is compared as it is. The trigram
-- index moves to it. Rewrites the table once (about a minute at a million tickets).
ALTER TABLE tickets ADD COLUMN search_text text NOT NULL
    GENERATED ALWAYS AS (lower(subject || ' ' || requester_name || ' ' || requester_email)) STORED;
DROP INDEX tickets_search_trgm_idx;
CREATE INDEX tickets_search_trgm_idx ON tickets USING gin (search_text gin_trgm_ops);
-- An exact email address: that requester's tickets, newest first, from one index range
-- instead of the trigram index (a rare address took about 56 ms at a million tickets there).
CREATE INDEX tickets_requester_email_newest_idx
    ON tickets (lower(requester_email), created_at DESC, id DESC);
