-- relops.release ledger, schema version 21 (SQLite): delivery metrics without sorting or parsing a window (issue 11).
--
-- Lead time as a column: the seconds from commit to finish, the very expression the metrics
-- queries computed per row before (so every answer stays the same), now computed once on write
-- (by the triggers, whoever writes the row) and held by the covering index below, so reading a
-- window's lead times parses no timestamps. Not a generated column: SQLite adds only VIRTUAL ones
-- to an existing table, and before 3.41 reads those from the table rows, not from an index.
ALTER TABLE deployments ADD COLUMN lead_seconds REAL;

UPDATE deployments SET lead_seconds = round((julianday(finished_at) - julianday(commit_at)) * 86400.0, 3)
WHERE commit_at IS NOT NULL;

CREATE TRIGGER deployments_lead_seconds_insert AFTER INSERT ON deployments WHEN NEW.commit_at IS NOT NULL
BEGIN
    UPDATE deployments SET lead_seconds = round((julianday(NEW.finished_at) - julianday(NEW.commit_at)) * 86400.0, 3)
    WHERE id = NEW.id;
END;

CREATE TRIGGER deployments_lead_seconds_update AFTER UPDATE OF commit_at, finished_at ON deployments
BEGIN
    UPDATE deployments SET lead_seconds = CASE WHEN NEW.commit_at IS NOT NULL
        THEN round((julianday(NEW.finished_at) - julianday(NEW.commit_at)) * 86400.0, 3) END
    WHERE id = NEW.id;
END;

DROP INDEX deployments_metrics;
CREATE INDEX deployments_metrics ON deployments (
    environment, finished_at, status, service, team, started_at, commit_at, planned, remedies_incident, lead_seconds
);

-- Recovery time only concerns failed and rolled-back deployments (about a tenth of them); with the
-- status before the finish time this index reads just those rows of a window, and holds every
-- column the recovery query needs, so it never visits the table rows.
CREATE INDEX deployments_env_status_finished ON deployments (environment, status, finished_at, started_at, service, team);
