-- relops.release ledger, schema version 5 (PostgreSQL): the schema version each release's
-- database migrations reached, beside the deployment of that release.

CREATE TABLE schema_migrations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT REFERENCES runs (run_id),
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    release TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('all', 'expand', 'contract', 'undo')),
    database_url TEXT NOT NULL,
    version_before TEXT,
    version_after TEXT,
    applied TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);

CREATE INDEX schema_migrations_service_env ON schema_migrations (service, environment, recorded_at);
