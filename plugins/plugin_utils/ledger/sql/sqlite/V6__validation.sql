-- relops.release ledger, schema version 6 (SQLite): stabilization periods and
-- incidents (issue 9, validation). A period is active from a deployment until
-- its end; the change gate reads active periods to restrict new changes to
-- the same service and environment. A breach ends the period and opens an
-- incident. Timestamps are fixed-width RFC 3339 UTC text; JSON is text.

CREATE TABLE stabilization_periods (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT REFERENCES runs (run_id),
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'completed', 'breached')),
    started_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    ended_at TEXT,
    details TEXT
);

CREATE INDEX stabilization_periods_service_env ON stabilization_periods (service, environment, status);

CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT REFERENCES runs (run_id),
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT,
    title TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('critical', 'high', 'moderate', 'low')),
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    source TEXT NOT NULL,
    stabilization_id INTEGER REFERENCES stabilization_periods (id),
    opened_at TEXT NOT NULL,
    resolved_at TEXT,
    details TEXT
);

CREATE INDEX incidents_service_env ON incidents (service, environment, opened_at);
