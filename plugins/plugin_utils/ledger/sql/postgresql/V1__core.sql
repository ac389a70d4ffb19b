-- relops.release ledger, schema version 1 (PostgreSQL): runs, deployments, gate
-- decisions and locks. Timestamps are fixed-width RFC 3339 UTC text, so text
-- order is time order. JSON documents are stored as text, as in SQLite, so both dialects return the same values.

CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'successful', 'failed', 'aborted')),
    playbook TEXT,
    play TEXT,
    actor TEXT NOT NULL,
    summary TEXT
);

CREATE INDEX runs_started_at ON runs (started_at);

CREATE TABLE deployments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT REFERENCES runs (run_id),
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'successful', 'failed', 'rolled_back')),
    strategy TEXT,
    artifact_digest TEXT,
    change_id TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    details TEXT
);

CREATE INDEX deployments_service_env ON deployments (service, environment, started_at);

CREATE TABLE decisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT REFERENCES runs (run_id),
    gate TEXT NOT NULL,
    subject TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny', 'wait')),
    reasons TEXT NOT NULL,
    policy_version TEXT,
    inputs_digest TEXT,
    decided_at TEXT NOT NULL
);

CREATE INDEX decisions_subject ON decisions (subject, decided_at);

CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    owner_run_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ttl_seconds INTEGER NOT NULL
);

CREATE TABLE lock_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('acquired', 'released', 'taken_over', 'force_released')),
    run_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    previous_run_id TEXT,
    previous_owner TEXT,
    at TEXT NOT NULL
);

CREATE INDEX lock_events_name ON lock_events (name, at);
