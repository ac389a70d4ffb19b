-- relops.release ledger, schema version 21 (SQLite): failed deployments by status for delivery metrics (issue 11).
-- Recovery time only concerns failed and rolled-back deployments (about a tenth of them); with the
-- status before the finish time this index reads just those rows of a window, and holds every
-- column the recovery query needs, so it never visits the table rows.

CREATE INDEX deployments_env_status_finished ON deployments (environment, status, finished_at, started_at, service, team);
