-- relops.release ledger, schema version 25 (sqlite): reviews as records.
-- The post-implementation review of a release keeps what the team said about it
-- (feedback: who, what) and what it will do about it (follow-up actions: owner,
-- due date, state), keyed by the release record's id, so the review report lists
-- them and flags the overdue ones instead of printing placeholders.
-- A feedback entry is kept once per release, author and text (digest: sha256 of
-- author and text, since the text may be longer than an index entry allows);
-- an action is one row per release and action id, updated in place.
-- Timestamps are fixed-width RFC 3339 UTC text; due dates are YYYY-MM-DD.

CREATE TABLE release_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id TEXT NOT NULL REFERENCES releases (release_id),
    author TEXT NOT NULL,
    feedback TEXT NOT NULL,
    digest TEXT NOT NULL,
    run_id TEXT REFERENCES runs (run_id),
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (release_id, digest)
);

CREATE TABLE release_actions (
    release_id TEXT NOT NULL REFERENCES releases (release_id),
    action_id TEXT NOT NULL,
    title TEXT NOT NULL,
    owner TEXT NOT NULL,
    due_date TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    run_id TEXT REFERENCES runs (run_id),
    recorded_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    done_at TEXT,
    PRIMARY KEY (release_id, action_id),
    CHECK (state IN ('open', 'done'))
);

CREATE INDEX release_actions_open ON release_actions (state, due_date);
