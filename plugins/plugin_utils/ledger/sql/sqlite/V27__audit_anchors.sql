-- relops.release ledger, schema version 27 (SQLite): audit trail anchors (issue 17).
-- One row per checkpoint the relops.release.audit callback wrote: the trail (the
-- live file's absolute path), the run whose checkpoint it is, the checkpoint's
-- seq and the SHA-256 of its line (head), the range it seals and the key that
-- signed it. The trail file can be cut; this row cannot be cut with it, so a
-- verifier holding the ledger notices a tail that no longer holds the newest
-- checkpoint. cut_by_seq marks anchors whose lines a later run found cut off
-- (the seq of the tamper_detected event that recorded it): they stay as
-- evidence and no longer count as the trail's newest anchor. No foreign key to
-- runs: a run that only wrote the trail has no runs row. Timestamps are
-- fixed-width RFC 3339 UTC text.

CREATE TABLE audit_anchors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trail TEXT NOT NULL,
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    head TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    sealed_through INTEGER NOT NULL,
    key_id TEXT,
    checkpoint_ts TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    cut_by_seq INTEGER,
    cut_at TEXT
);

CREATE UNIQUE INDEX audit_anchors_line ON audit_anchors (trail, seq, head);
CREATE INDEX audit_anchors_run ON audit_anchors (run_id, seq);
