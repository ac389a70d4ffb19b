-- relops.release ledger, schema version 3 (SQLite): artifact promotions between
-- environments' repositories (issue 3). One row per copy that changed something;
-- a promotion that finds the artifact already there records nothing.

CREATE TABLE artifact_promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT REFERENCES runs (run_id),
    artifact TEXT NOT NULL,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    from_environment TEXT NOT NULL,
    to_environment TEXT NOT NULL,
    from_repository TEXT NOT NULL,
    to_repository TEXT NOT NULL,
    signers TEXT NOT NULL,
    promoted_at TEXT NOT NULL
);

CREATE INDEX artifact_promotions_sha256 ON artifact_promotions (sha256, to_environment);

CREATE INDEX artifact_promotions_service ON artifact_promotions (service, to_environment, promoted_at);
