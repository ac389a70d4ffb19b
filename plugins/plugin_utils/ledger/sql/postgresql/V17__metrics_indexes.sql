-- relops.release ledger, schema version 17 (PostgreSQL): covering indexes for delivery metrics (issue 11).
-- A metrics window reads every finished deployment in it; with these columns in the index the
-- scan can be index-only (once vacuum has marked the pages visible). The link lookup (newest
-- deployment on a CI before an incident) also checks the status from the index.

CREATE INDEX deployments_metrics ON deployments (environment, finished_at)
    INCLUDE (status, service, team, started_at, commit_at, planned, remedies_incident);

DROP INDEX deployments_ci_env_finished;
CREATE INDEX deployments_ci_env_finished_status ON deployments (ci, environment, finished_at, id) INCLUDE (status);

-- The covering index starts with the same columns: the narrower one only costs writes.
DROP INDEX deployments_env_finished;
