-- relops.release ledger, schema version 18 (PostgreSQL): the archive index (issue 12,
-- retention). One row per file relops.release.archive moved out of an artifact
-- directory, an audit trail or a report directory: where it was, where it is
-- now (a file, or a member of a tar.gz/tar.zst item), its sha256 and size, why
-- it went, and for an audit segment the first and last seq and the hash of its
-- last line, so the chain can be verified across archived segments. Files of
-- one item (a package and its envelope) share an archive_id. A restored row
-- stays as history. Timestamps are fixed-width RFC 3339 UTC text; JSON is text.

CREATE TABLE archive_items (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archive_id TEXT NOT NULL,
    run_id TEXT REFERENCES runs (run_id),
    kind TEXT NOT NULL CHECK (kind IN ('artifact', 'audit', 'report')),
    status TEXT NOT NULL CHECK (status IN ('archived', 'restored')),
    original_path TEXT NOT NULL,
    archive_path TEXT NOT NULL,
    member TEXT,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    service TEXT,
    version TEXT,
    reason TEXT NOT NULL,
    first_seq BIGINT,
    last_seq BIGINT,
    last_hash TEXT,
    archived_at TEXT NOT NULL,
    restored_at TEXT,
    restored_run_id TEXT,
    details TEXT
);

CREATE INDEX archive_items_archive_id ON archive_items (archive_id);
CREATE INDEX archive_items_kind ON archive_items (kind, status, original_path);
CREATE UNIQUE INDEX archive_items_archived_original ON archive_items (original_path) WHERE status = 'archived';
