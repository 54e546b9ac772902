-- depends: 0013_audit 0016_webhooks
-- Issue 23, shared DESIGN.md section 13: a customer's personal data, erased on request, and
-- closed tickets purged after RETENTION_AFTER (supportdesk/privacy, README "Personal data:
-- export and erasure").
--
-- The app role may not UPDATE or DELETE ticket_events (core/migrate.py APPEND_ONLY), and the
-- table's trigger refuses both even to its owner. Erasure and purge must rewrite or remove
-- events, so they run here, as the owner, through two SECURITY DEFINER functions with a fixed
-- search_path: the app role may call them (migrate.grant_app_role grants EXECUTE on every
-- SECURITY DEFINER function of the schema; PUBLIC may not) and can do nothing else to the
-- timeline. Each function sets `supportdesk.rewriting_history` for its own duration only
-- (the function's SET clause; restored when it returns), and the trigger lets an UPDATE or
-- DELETE through only when that setting is on AND the statement runs as the table's owner:
-- the app role cannot pass by setting it, for it has no UPDATE or DELETE privilege to use.
-- TRUNCATE stays refused to everyone.

CREATE OR REPLACE FUNCTION ticket_events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE')
       AND current_setting('supportdesk.rewriting_history', true) = 'on'
       AND current_user = (SELECT tableowner FROM pg_tables
                           WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME) THEN
        RETURN CASE TG_OP WHEN 'UPDATE' THEN NEW ELSE OLD END;
    END IF;
    RAISE EXCEPTION 'ticket_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Stored files whose rows are gone (erased or purged), to be removed from storage once that
-- is committed: a crash between the commit and the removal leaves the key here, and the next
-- erasure or purge run removes it (supportdesk/privacy/files.py). Nothing else is kept: a
-- storage key is `tickets/<id>/<uuid>`, no personal data.
CREATE TABLE pending_file_deletions (
    storage_key  text PRIMARY KEY CHECK (storage_key <> ''),
    queued_at    timestamptz NOT NULL DEFAULT now()
);

-- Finding everything of one address at scale, without reading whole tables: the messages it
-- wrote, the emails sent to it, its comings and goings as a participant.
CREATE INDEX ticket_messages_author_email_idx
    ON ticket_messages (lower(author_email)) WHERE author_email IS NOT NULL;
CREATE INDEX email_outbox_to_address_idx ON email_outbox (lower(to_address));
CREATE INDEX email_outbox_cc_addresses_idx ON email_outbox USING gin (cc_addresses);
-- The retention purge's due tickets.
CREATE INDEX tickets_closed_idx ON tickets (updated_at) WHERE status = 'CLOSED';
CREATE INDEX ticket_events_participant_email_idx ON ticket_events (lower(data ->> 'email'))
    WHERE type IN ('PARTICIPANT_ADDED', 'PARTICIPANT_REMOVED');

-- A string as a regular expression that matches exactly it.
CREATE FUNCTION privacy_regex_quote(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT regexp_replace(value, '([^[:alnum:][:space:]])', '\\\1', 'g')
$$;

-- A text with every occurrence of each of `needles` (longest first) replaced by '[erased]'.
CREATE FUNCTION privacy_replace_all(value text, needles text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    needle text;
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH needle IN ARRAY needles LOOP
        value := replace(value, needle, '[erased]');
    END LOOP;
    RETURN value;
END;
$$;

-- Every string in a JSON value with the pattern's matches replaced by '[erased]'; the string
-- values of `drop_keys` (subject, filename, error: conversation text) replaced whole; and in
-- an object naming a ticket of `pids` (a merge's {"pid", "subject"}), its subject.
CREATE FUNCTION privacy_scrub_json(value jsonb, pattern text, drop_keys text[], pids text[])
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    result jsonb;
    named boolean;
BEGIN
    CASE jsonb_typeof(value)
    WHEN 'object' THEN
        named := value ->> 'pid' = ANY (pids);
        SELECT coalesce(jsonb_object_agg(key,
                   CASE WHEN jsonb_typeof(item) = 'string'
                             AND (key = ANY (drop_keys) OR (named AND key = 'subject'))
                        THEN '"[erased]"'::jsonb
                        ELSE privacy_scrub_json(item, pattern, drop_keys, pids) END), '{}')
        INTO result FROM jsonb_each(value) AS each(key, item);
        RETURN result;
    WHEN 'array' THEN
        SELECT coalesce(jsonb_agg(privacy_scrub_json(item, pattern, drop_keys, pids)
                                  ORDER BY n), '[]')
        INTO result FROM jsonb_array_elements(value) WITH ORDINALITY AS each(item, n);
        RETURN result;
    WHEN 'string' THEN
        RETURN to_jsonb(regexp_replace(value #>> '{}', pattern, '[erased]', 'gi'));
    ELSE
        RETURN value;
    END CASE;
END;
$$;

-- Erase one customer (README, "Personal data: export and erasure"): on the tickets they
-- requested, the whole conversation (every message's text, every file, the subject, the
-- outbox's copies) and their name and address; on others' tickets, what they wrote and sent,
-- their participation, and their address and names wherever the text names them; their
-- quarantined mail and their blocked-sender entry. Each ticket touched gets an ERASED event
-- whose data holds counts only. One transaction (the caller's): a crash undoes all of it,
-- and running it again finds what is left. Returns the counts; the files to remove from
-- storage are queued in pending_file_deletions.
CREATE FUNCTION privacy_erase_customer(p_email text, p_actor_id bigint) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET supportdesk.rewriting_history = 'on'
AS $$
DECLARE
    placeholder_email CONSTANT text := 'erased@erased.invalid';
    placeholder_name CONSTANT text := 'Erased customer';
    erased CONSTANT text := '[erased]';
    dead_reason CONSTANT text := 'not sent: the recipient''s data was erased';
    conversation CONSTANT text[] := ARRAY['subject', 'filename', 'error', 'body'];
    v_email text := lower(btrim(p_email));
    v_pattern text;
    v_names text[];
    v_own bigint[];
    v_pids text[];
    v_other bigint[];
    v_partners bigint[];
    v_email_pattern text;
    v_quoted text[];
    v_messages bigint[];
    v_files int;
    v_outbox int;
    v_quarantine int;
    v_events int;
BEGIN
    IF v_email IS NULL OR v_email !~ '^[^@[:space:]]+@[^@[:space:]]+$' OR length(v_email) > 254 THEN
        RAISE EXCEPTION 'not an email address' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_email = placeholder_email THEN
        RETURN jsonb_build_object('tickets', 0, 'other_tickets', 0, 'messages', 0, 'files', 0,
                                  'outbox', 0, 'quarantine', 0, 'events', 0);
    END IF;

    -- Their tickets, locked as every writer of a ticket locks it.
    PERFORM 1 FROM tickets WHERE lower(requester_email) = v_email ORDER BY id FOR UPDATE;
    SELECT coalesce(array_agg(id ORDER BY id), '{}'), coalesce(array_agg(pid), '{}')
    INTO v_own, v_pids FROM tickets WHERE lower(requester_email) = v_email;

    -- Others' tickets they took part in: copied, wrote, were written to, or were named in.
    SELECT coalesce(array_agg(DISTINCT ticket_id), '{}') INTO v_other FROM (
        SELECT ticket_id FROM ticket_participants WHERE email = v_email
        UNION SELECT ticket_id FROM ticket_messages
              WHERE lower(author_email) = v_email AND author_email IS NOT NULL
        UNION SELECT ticket_id FROM email_outbox
              WHERE (lower(to_address) = v_email OR cc_addresses @> ARRAY[v_email])
                AND ticket_id IS NOT NULL
        UNION SELECT ticket_id FROM ticket_events
              WHERE type IN ('PARTICIPANT_ADDED', 'PARTICIPANT_REMOVED')
                AND lower(data ->> 'email') = v_email
    ) AS took_part WHERE ticket_id <> ALL (v_own);
    PERFORM 1 FROM tickets WHERE id = ANY (v_other) ORDER BY id FOR UPDATE;

    -- Tickets merged into or out of theirs, or following them up: their timelines may
    -- name their subjects.
    SELECT coalesce(array_agg(DISTINCT id), '{}') INTO v_partners FROM (
        SELECT id FROM tickets WHERE merged_into_id = ANY (v_own)
        UNION SELECT merged_into_id FROM tickets WHERE id = ANY (v_own)
        UNION SELECT id FROM tickets WHERE follows_up_id = ANY (v_own)
        UNION SELECT t.id FROM ticket_events e
              CROSS JOIN unnest(ARRAY['into', 'from', 'to']) AS k
              JOIN tickets t ON t.pid = e.data -> k ->> 'pid'
              WHERE e.ticket_id = ANY (v_own)
                AND e.type IN ('MERGED_INTO', 'MERGED_FROM', 'SPLIT_TO', 'SPLIT_FROM')
    ) AS linked WHERE id IS NOT NULL AND id <> ALL (v_own) AND id <> ALL (v_other);

    -- Every name they went by, and their address: the pattern of what to blank in texts.
    SELECT coalesce(array_agg(DISTINCT name), '{}') INTO v_names FROM (
        SELECT btrim(requester_name) AS name FROM tickets WHERE id = ANY (v_own)
        UNION SELECT btrim(name) FROM ticket_participants WHERE email = v_email
        UNION SELECT btrim(data ->> 'name') FROM ticket_events
              WHERE type IN ('PARTICIPANT_ADDED', 'PARTICIPANT_REMOVED')
                AND lower(data ->> 'email') = v_email
    ) AS names WHERE name <> '' AND name IS NOT NULL AND name <> placeholder_name
                 AND lower(name) <> v_email;
    -- And each word of them of three letters or more (a reply's "Hi Zelda,"): only ever
    -- blanked on tickets they requested or took part in.
    SELECT coalesce(array_agg(DISTINCT word), '{}') INTO v_names FROM (
        SELECT unnest(v_names) AS word
        UNION SELECT regexp_split_to_table(n, '[^[:alnum:]''-]+') FROM unnest(v_names) AS n
    ) AS words WHERE length(word) >= 3;
    v_email_pattern := '(?<![[:alnum:]._%+-])' || privacy_regex_quote(v_email)
                       || '(?![[:alnum:]_-])(?!\.[[:alnum:]])';
    v_pattern := v_email_pattern;
    IF cardinality(v_names) > 0 THEN
        v_pattern := v_pattern || '|\m(?:' || (
            SELECT string_agg(privacy_regex_quote(n), '|' ORDER BY length(n) DESC)
            FROM unnest(v_names) AS n) || ')\M';
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS privacy_erased_files (id bigint PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE privacy_erased_files;
    CREATE TEMP TABLE IF NOT EXISTS privacy_erased_counts (
        ticket_id bigint NOT NULL, messages int NOT NULL DEFAULT 0, files int NOT NULL DEFAULT 0
    ) ON COMMIT DROP;
    TRUNCATE privacy_erased_counts;
    INSERT INTO privacy_erased_counts (ticket_id)
    SELECT unnest(v_own) UNION SELECT unnest(v_other);

    -- Messages: every one of their tickets; theirs on others' tickets.
    SELECT coalesce(array_agg(id), '{}') INTO v_messages FROM ticket_messages
    WHERE ticket_id = ANY (v_own)
       OR (ticket_id = ANY (v_other) AND lower(author_email) = v_email
           AND author_email IS NOT NULL);
    -- The lines of what they wrote on others' tickets, as replies quote them (in text, and
    -- escaped in HTML): blanked where others' messages and emails repeat them.
    SELECT coalesce(array_agg(line ORDER BY length(line) DESC), '{}') INTO v_quoted FROM (
        SELECT DISTINCT variant AS line FROM (
            SELECT btrim(l) AS l FROM ticket_messages m,
                 regexp_split_to_table(coalesce(m.full_body, m.body), '\r?\n') AS l
            WHERE m.id = ANY (v_messages) AND m.ticket_id = ANY (v_other)
        ) AS lines,
        LATERAL (VALUES (l), (replace(replace(replace(replace(replace(l, '&', '&amp;'),
                                 '<', '&lt;'), '>', '&gt;'), '"', '&#34;'), '''', '&#39;'))
        ) AS v(variant)
        WHERE length(l) >= 8
        LIMIT 2000
    ) AS quoted;
    WITH blanked AS (
        UPDATE ticket_messages
        SET body = erased, full_body = NULL, html_body = NULL,
            author_email = CASE WHEN lower(author_email) = v_email THEN placeholder_email
                                ELSE author_email END
        WHERE id = ANY (v_messages)
        RETURNING ticket_id
    )
    UPDATE privacy_erased_counts c SET messages = n
    FROM (SELECT ticket_id, count(*) AS n FROM blanked GROUP BY ticket_id) AS b
    WHERE c.ticket_id = b.ticket_id;
    -- Others' messages on others' tickets: their address and names, wherever written.
    UPDATE ticket_messages
    SET body = regexp_replace(privacy_replace_all(body, v_quoted), v_pattern, erased, 'gi'),
        full_body = regexp_replace(privacy_replace_all(full_body, v_quoted),
                                   v_pattern, erased, 'gi'),
        html_body = regexp_replace(privacy_replace_all(html_body, v_quoted),
                                   v_pattern, erased, 'gi')
    WHERE ticket_id = ANY (v_other) AND id <> ALL (v_messages);

    -- Files: of every message blanked above (and any of their tickets' without one).
    WITH gone AS (
        DELETE FROM attachments
        WHERE message_id = ANY (v_messages) OR ticket_id = ANY (v_own)
        RETURNING ticket_id, storage_key, id
    ), queued AS (
        INSERT INTO pending_file_deletions (storage_key)
        SELECT storage_key FROM gone ON CONFLICT DO NOTHING
    ), noted AS (
        INSERT INTO privacy_erased_files (id) SELECT id FROM gone
    ), events AS (
        -- The file's name, in the timeline of its ATTACHMENT_ADDED event.
        UPDATE ticket_events e SET data = e.data || jsonb_build_object('filename', erased)
        FROM gone WHERE e.ticket_id = gone.ticket_id AND e.type = 'ATTACHMENT_ADDED'
                    AND e.data ->> 'attachment_id' = gone.id::text
    )
    UPDATE privacy_erased_counts c SET files = n
    FROM (SELECT ticket_id, count(*) AS n FROM gone GROUP BY ticket_id) AS g
    WHERE c.ticket_id = g.ticket_id;
    SELECT coalesce(sum(files), 0) INTO v_files FROM privacy_erased_counts;

    -- The outbox: the copies of their conversations, and every email to them. What was not
    -- sent yet is not sent (DEAD, with the reason); nothing is deleted (the Outbox's history).
    UPDATE email_outbox
    SET subject = CASE WHEN ticket_id = ANY (v_own) THEN erased
                       ELSE regexp_replace(subject, v_pattern, erased, 'gi') END,
        body_text = CASE WHEN ticket_id = ANY (v_own) OR lower(to_address) = v_email THEN erased
                         ELSE regexp_replace(privacy_replace_all(body_text, v_quoted),
                                             v_pattern, erased, 'gi') END,
        body_html = CASE WHEN ticket_id = ANY (v_own) OR lower(to_address) = v_email THEN NULL
                         ELSE regexp_replace(privacy_replace_all(body_html, v_quoted),
                                             v_pattern, erased, 'gi') END,
        to_address = CASE WHEN lower(to_address) = v_email THEN placeholder_email
                          ELSE to_address END,
        cc_addresses = ARRAY(SELECT a FROM unnest(cc_addresses) AS a WHERE lower(a) <> v_email),
        headers = privacy_scrub_json(headers, v_pattern, '{}', '{}'),
        last_error = CASE WHEN status IN ('PENDING', 'FAILED')
                               AND (ticket_id = ANY (v_own) OR lower(to_address) = v_email)
                          THEN dead_reason
                          ELSE regexp_replace(last_error, v_pattern, erased, 'gi') END,
        attachment_ids = CASE WHEN ticket_id = ANY (v_own) THEN '{}'
                              ELSE ARRAY(SELECT a FROM unnest(attachment_ids) AS a
                                         WHERE a NOT IN (SELECT id FROM privacy_erased_files))
                         END,
        status = CASE WHEN status IN ('PENDING', 'FAILED')
                           AND (ticket_id = ANY (v_own) OR lower(to_address) = v_email)
                      THEN 'DEAD' ELSE status END,
        next_attempt_at = CASE WHEN status IN ('PENDING', 'FAILED')
                                    AND (ticket_id = ANY (v_own) OR lower(to_address) = v_email)
                               THEN NULL ELSE next_attempt_at END,
        updated_at = now()
    WHERE ticket_id = ANY (v_own) OR ticket_id = ANY (v_other)
       OR lower(to_address) = v_email OR cc_addresses @> ARRAY[v_email];
    GET DIAGNOSTICS v_outbox = ROW_COUNT;

    -- Outgoing webhooks' deliveries (0016_webhooks): their payloads copy the conversation
    -- and the people. Those of their tickets and of tickets they took part in, and any other
    -- naming their address, are deleted; one not delivered yet is not sent (what it told of
    -- is gone). No history of ours lives there: it is the record of a call to another system.
    DELETE FROM webhook_deliveries
    WHERE ticket_id = ANY (v_own || v_other) OR payload::text ~* v_email_pattern;

    -- The timelines: on their tickets every event's conversation text and their name and
    -- address; on others' their address and names; a merge's subject of their tickets.
    UPDATE ticket_events
    SET data = privacy_scrub_json(data, v_pattern,
                                  CASE WHEN ticket_id = ANY (v_own) THEN conversation
                                       ELSE '{}' END, v_pids)
    WHERE ticket_id = ANY (v_own || v_other || v_partners);
    GET DIAGNOSTICS v_events = ROW_COUNT;

    -- Participation, the tickets themselves, their mail kept aside, their block.
    DELETE FROM ticket_participants WHERE email = v_email;
    UPDATE tickets
    SET subject = erased, requester_email = placeholder_email, requester_name = placeholder_name
    WHERE id = ANY (v_own);
    -- (Cut to the column's 255: '[erased]' is longer than a short name it replaces.)
    UPDATE tickets SET subject = left(regexp_replace(subject, v_pattern, erased, 'gi'), 255)
    WHERE id = ANY (v_other) AND subject ~* v_pattern;
    DELETE FROM quarantine WHERE from_header ~* v_email_pattern;
    GET DIAGNOSTICS v_quarantine = ROW_COUNT;
    DELETE FROM blocked_senders WHERE pattern = v_email;

    -- What was done, without whose: counts only.
    INSERT INTO ticket_events (ticket_id, type, actor_id, data)
    SELECT c.ticket_id, 'ERASED', p_actor_id,
           jsonb_build_object('requester', c.ticket_id = ANY (v_own),
                              'messages', c.messages, 'files', c.files)
    FROM privacy_erased_counts c ORDER BY c.ticket_id;

    RETURN jsonb_build_object(
        'tickets', cardinality(v_own), 'other_tickets', cardinality(v_other),
        'messages', cardinality(v_messages), 'files', v_files, 'outbox', v_outbox,
        'quarantine', v_quarantine, 'events', v_events);
END;
$$;

-- Purge CLOSED tickets last changed before `p_before` (RETENTION_AFTER ago), at most
-- `p_limit` of them, with everything that hangs on them; their files are queued in
-- pending_file_deletions. Refuses a moment less than a day ago: the app role may call this,
-- and must not be able to empty the desk of yesterday's work with it. Returns how many.
CREATE FUNCTION privacy_purge_closed_tickets(p_before timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET supportdesk.rewriting_history = 'on'
AS $$
DECLARE
    v_ids bigint[];
BEGIN
    IF p_before IS NULL OR p_before > now() - interval '1 day' THEN
        RAISE EXCEPTION 'purging is for tickets closed more than a day ago'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT coalesce(array_agg(id), '{}') INTO v_ids FROM (
        SELECT id FROM tickets
        WHERE status = 'CLOSED' AND updated_at < p_before
        ORDER BY updated_at, id LIMIT greatest(p_limit, 0)
        FOR UPDATE SKIP LOCKED
    ) AS due;
    IF cardinality(v_ids) = 0 THEN
        RETURN 0;
    END IF;
    -- Links from tickets that stay: they lose the pointer, not themselves.
    UPDATE tickets SET follows_up_id = NULL
    WHERE follows_up_id = ANY (v_ids) AND id <> ALL (v_ids);
    UPDATE tickets SET merged_into_id = NULL
    WHERE merged_into_id = ANY (v_ids) AND id <> ALL (v_ids);
    UPDATE tickets SET follows_up_id = NULL, merged_into_id = NULL WHERE id = ANY (v_ids);
    WITH gone AS (
        DELETE FROM attachments
        WHERE ticket_id = ANY (v_ids)
           OR message_id IN (SELECT id FROM ticket_messages WHERE ticket_id = ANY (v_ids))
        RETURNING storage_key
    )
    INSERT INTO pending_file_deletions (storage_key)
    SELECT storage_key FROM gone ON CONFLICT DO NOTHING;
    DELETE FROM email_outbox
    WHERE ticket_id = ANY (v_ids)
       OR ticket_message_id IN (SELECT id FROM ticket_messages WHERE ticket_id = ANY (v_ids));
    DELETE FROM ticket_events WHERE ticket_id = ANY (v_ids);
    DELETE FROM ticket_messages WHERE ticket_id = ANY (v_ids);
    DELETE FROM ticket_participants WHERE ticket_id = ANY (v_ids);
    DELETE FROM ticket_followers WHERE ticket_id = ANY (v_ids);
    DELETE FROM tickets WHERE id = ANY (v_ids);
    RETURN cardinality(v_ids);
END;
$$;

-- Fixed to the schema the tables are in, as it is when migrating (Supabase: public).
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION privacy_erase_customer(text, bigint) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION privacy_purge_closed_tickets(timestamptz, integer) '
                   'SET search_path = %I, pg_temp', current_schema());
END;
$$;
REVOKE EXECUTE ON FUNCTION privacy_erase_customer(text, bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION privacy_purge_closed_tickets(timestamptz, integer) FROM PUBLIC;
