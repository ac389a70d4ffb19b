-- relops.release ledger, schema version 15 (postgresql): ephemeral environments
-- (issue 12). One row per environment provisioned for a test run: its app port,
-- database and slot directory, and when it expires. A partial unique index keeps
-- each name and each port to one active environment, so two runs can never be
-- handed the same port. Timestamps are fixed-width RFC 3339 UTC text; JSON is text.

CREATE TABLE ephemeral_envs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT REFERENCES runs (run_id),
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'torn_down', 'reaped')),
    port INTEGER NOT NULL,
    db_name TEXT,
    slot_dir TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at TEXT,
    details TEXT
);

CREATE UNIQUE INDEX ephemeral_envs_active_name ON ephemeral_envs (name) WHERE status = 'active';
CREATE UNIQUE INDEX ephemeral_envs_active_port ON ephemeral_envs (port) WHERE status = 'active';
CREATE INDEX ephemeral_envs_expiry ON ephemeral_envs (status, expires_at);
