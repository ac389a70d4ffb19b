-- relops.release ledger, schema version 22 (sqlite): the release record.
-- One row per release attempt, keyed by release id, with the facts that gates
-- decide from and metrics count by in columns; every stage the release passes
-- is one row of release_stages (append-only: a stage written again is a new row,
-- the newest wins), so what each stage saw stays as it was recorded.
-- Timestamps are fixed-width RFC 3339 UTC text; JSON is text.

CREATE TABLE releases (
    release_id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    run_id TEXT REFERENCES runs (run_id),
    actor TEXT NOT NULL,
    owner TEXT,
    team TEXT,
    source_revision TEXT,
    commit_time TEXT,
    runbook TEXT,
    change_number TEXT,
    permit_id TEXT,
    strategy TEXT,
    outcome TEXT NOT NULL DEFAULT 'in_progress',
    rolled_back_to TEXT,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    CHECK (outcome IN ('in_progress', 'successful', 'failed', 'rolled_back', 'aborted'))
);

CREATE INDEX releases_service ON releases (service, environment, started_at);
CREATE INDEX releases_digest ON releases (digest);

CREATE TABLE release_stages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id TEXT NOT NULL REFERENCES releases (release_id),
    stage TEXT NOT NULL,
    run_id TEXT REFERENCES runs (run_id),
    recorded_at TEXT NOT NULL,
    data TEXT NOT NULL
);

CREATE INDEX release_stages_release ON release_stages (release_id, stage);

CREATE TABLE release_permits (
    permit_id TEXT PRIMARY KEY,
    release_id TEXT NOT NULL REFERENCES releases (release_id),
    environment TEXT NOT NULL,
    digest TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT,
    revoke_reason TEXT
);

CREATE INDEX release_permits_release ON release_permits (release_id);
