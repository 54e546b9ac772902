-- The company's own mailboxes (DESIGN.md section 10): their settings, managed by ADMINs, and
-- where each one's fetcher stands. Secrets are written sealed (mail.mailboxes.secrets).

-- name: list_mailboxes*
-- Every mailbox, by address, for the Mailboxes page and the API.
SELECT * FROM mailboxes ORDER BY address, id;

-- name: mailbox_by_id^
-- One mailbox, or nothing.
SELECT * FROM mailboxes WHERE id = :id;

-- name: lock_mailbox^
-- One mailbox, locked until the end of the transaction (an edit, or the fetcher advancing).
SELECT * FROM mailboxes WHERE id = :id FOR UPDATE;

-- name: insert_mailbox<!
-- A new mailbox, status NEW until its fetcher first connects.
INSERT INTO mailboxes (address, display_name, imap_host, imap_port, imap_security,
                       imap_folder, auth, username, secret_encrypted, oauth_provider,
                       smtp_host, smtp_port, smtp_security, smtp_username,
                       smtp_secret_encrypted, processed, backfill_days, trusted_authserv_ids,
                       is_active)
VALUES (:address, :display_name, :imap_host, :imap_port, :imap_security, :imap_folder, :auth,
        :username, :secret_encrypted, :oauth_provider, :smtp_host, :smtp_port, :smtp_security,
        :smtp_username, :smtp_secret_encrypted, :processed, :backfill_days,
        :trusted_authserv_ids, :is_active)
RETURNING *;

-- name: update_mailbox<!
-- A mailbox's settings as edited (every settable column; the service merged the changes).
-- A running fetcher connects again with them (fetchable_mailboxes' settings_key).
UPDATE mailboxes
SET address = :address, display_name = :display_name, imap_host = :imap_host,
    imap_port = :imap_port, imap_security = :imap_security, imap_folder = :imap_folder,
    auth = :auth, username = :username, secret_encrypted = :secret_encrypted,
    oauth_provider = :oauth_provider, smtp_host = :smtp_host, smtp_port = :smtp_port,
    smtp_security = :smtp_security, smtp_username = :smtp_username,
    smtp_secret_encrypted = :smtp_secret_encrypted, processed = :processed,
    backfill_days = :backfill_days, trusted_authserv_ids = :trusted_authserv_ids,
    is_active = :is_active, updated_at = now()
WHERE id = :id
RETURNING *;

-- name: delete_mailbox^
-- Stop fetching a mailbox for good; its tickets stay (tickets.mailbox_id is SET NULL).
DELETE FROM mailboxes WHERE id = :id RETURNING id, address;

-- name: fetchable_mailboxes*
-- The mailboxes a worker should fetch: active, not waiting for an ADMIN to authorize them
-- again, and (OAuth) connected once. `settings_key` changes with what a fetcher connects and imports by (not with
-- a refreshed OAuth token, nor with the fetcher's own status): a running fetcher whose key
-- changed connects again.
SELECT id, address,
       md5(concat_ws(E'\n', imap_host, imap_port, imap_security, imap_folder, auth, username,
                     CASE WHEN auth = 'PASSWORD' THEN secret_encrypted END, oauth_provider,
                     processed, backfill_days)) AS settings_key
FROM mailboxes
WHERE is_active AND status <> 'REAUTHORIZE'
  AND (auth = 'PASSWORD' OR secret_encrypted IS NOT NULL)
ORDER BY id;

-- name: start_mailbox_at!
-- Where fetching starts in a folder seen for the first time (or with a new UIDVALIDITY):
-- after :last_uid. backfilled_at is set once, on the first connection.
UPDATE mailboxes
SET uidvalidity = :uidvalidity, last_uid = :last_uid,
    backfilled_at = coalesce(backfilled_at, :now)
WHERE id = :id;

-- name: advance_mailbox!
-- The message :uid is stored: in the transaction that stored it. Never backwards, and only
-- in the folder generation it came from.
UPDATE mailboxes SET last_uid = greatest(last_uid, :uid)
WHERE id = :id AND uidvalidity = :uidvalidity;

-- name: mailbox_fetched!
-- The fetcher reached the mailbox: OK, no error (unless it waits for reauthorization).
UPDATE mailboxes SET status = 'OK', last_error = NULL, last_fetch_at = :now
WHERE id = :id AND status <> 'REAUTHORIZE';

-- name: mailbox_failed!
-- The fetcher could not reach the mailbox; :error is safe to show an ADMIN.
UPDATE mailboxes SET status = 'ERROR', last_error = :error
WHERE id = :id AND status <> 'REAUTHORIZE';

-- name: mailbox_needs_reauthorization!
-- The OAuth provider refused the mailbox's token: fetching pauses until an ADMIN connects
-- it again (which sets another status).
UPDATE mailboxes SET status = 'REAUTHORIZE', last_error = :error WHERE id = :id;

-- name: is_mailbox_address$
-- Whether the address (its plus part removed) is one of the company's mailboxes: mail from
-- it is our own, recorded and never answered.
SELECT EXISTS (SELECT 1 FROM mailboxes WHERE address = lower(:address));
