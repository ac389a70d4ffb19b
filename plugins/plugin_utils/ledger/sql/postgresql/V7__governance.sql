-- relops.release ledger, schema version 7 (PostgreSQL): change-governance exemptions
-- (issue 5). An exemption waives one gate check (scope rule) for a team or
-- a service until it expires or is revoked; the gate records each use.
-- Timestamps are fixed-width RFC 3339 UTC text; JSON is text.

CREATE TABLE exemptions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    run_id TEXT REFERENCES runs (run_id),
    team TEXT,
    service TEXT,
    rule TEXT NOT NULL,
    approver TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT,
    revoke_reason TEXT,
    CHECK (team IS NOT NULL OR service IS NOT NULL)
);

CREATE INDEX exemptions_scope ON exemptions (rule, service, team, expires_at);

CREATE TABLE exemption_uses (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exemption_id BIGINT NOT NULL REFERENCES exemptions (id),
    run_id TEXT REFERENCES runs (run_id),
    gate TEXT NOT NULL,
    subject TEXT NOT NULL,
    used_at TEXT NOT NULL
);

CREATE INDEX exemption_uses_exemption ON exemption_uses (exemption_id, used_at);
