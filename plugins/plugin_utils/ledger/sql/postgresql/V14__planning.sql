-- relops.release ledger, schema version 14 (PostgreSQL): reservations of shared test
-- services (issue 12, environments). A reservation holds one service for a
-- time slot [starts_at, ends_at) and names the database or schema its data
-- lives in, so two teams never share test data. Released reservations stay as
-- history. Timestamps are fixed-width RFC 3339 UTC text; JSON is text.

CREATE TABLE env_reservations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT REFERENCES runs (run_id),
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    purpose TEXT,
    data_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'released')),
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    released_at TEXT,
    details TEXT
);

CREATE INDEX env_reservations_service ON env_reservations (service, status, starts_at);
