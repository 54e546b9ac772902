-- depends: 0019_waiting_event
-- Issue 24 (DESIGN.md section 12, Saved replies): a saved reply may hold files, inserted into
-- a reply with its text. Each is stored through the same storage as attachments, under its
-- own key (`saved-replies/<saved reply id>/<uuid>`); a reply sent with one gets a copy under
-- the ticket (an attachment), so deleting the saved reply never takes a ticket's file away.
-- Deleting a saved reply deletes its rows here; the stored bytes are removed after that
-- commit (tickets/saved_reply_files.py), and the orphan sweep removes any a crash left.
CREATE TABLE saved_reply_files (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    saved_reply_id  bigint NOT NULL REFERENCES saved_replies (id) ON DELETE CASCADE,
    filename        text NOT NULL
                    CONSTRAINT saved_reply_files_filename_not_blank
                    CHECK (btrim(filename) <> '' AND length(filename) <= 255),
    content_type    text NOT NULL
                    CONSTRAINT saved_reply_files_content_type_shape
                    CHECK (content_type ~ '^[a-z0-9.+-]+/[a-z0-9.+-]+$'),
    size_bytes      bigint NOT NULL
                    CONSTRAINT saved_reply_files_size_not_negative CHECK (size_bytes >= 0),
    sha256          text NOT NULL
                    CONSTRAINT saved_reply_files_sha256_shape CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    storage_key     text NOT NULL UNIQUE
                    CONSTRAINT saved_reply_files_storage_key_not_blank CHECK (storage_key <> ''),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saved_reply_files_reply_idx ON saved_reply_files (saved_reply_id, id);
