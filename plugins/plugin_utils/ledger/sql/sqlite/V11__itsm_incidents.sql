-- relops.release ledger, schema version 11: incidents as the local ITSM backend's
-- incident records (issue 4 with issue 9). correlation_id makes opening an
-- incident idempotent (a retried run finds the one it opened, as on ServiceNow,
-- where task.correlation_id serves the same purpose); caused_by holds the
-- number of the change that caused the incident (ServiceNow's incident.caused_by).

ALTER TABLE incidents ADD COLUMN correlation_id TEXT;

ALTER TABLE incidents ADD COLUMN caused_by TEXT;

CREATE UNIQUE INDEX incidents_correlation_id ON incidents (correlation_id);
