-- relops.release ledger, schema version 26 (SQLite): DORA over release records counted in the
-- database (issue 18), so a million records answer in seconds (docs/metrics.md).
--
-- Lead time as a column, as V21 did for deployments: the seconds from the manifest's commit time
-- to the release's finish, computed on write by the triggers (whoever writes the row), so reading
-- a window's lead times parses no timestamps. NULL without a commit time, before the finish, or
-- when the commit time is not a timestamp SQLite reads. Whole seconds from strftime('%s') (the
-- fraction cut off first) plus the fractions read from the text, not julianday(): SQLite reads
-- only milliseconds, so julianday() would differ from the timestamps' own difference (what Python
-- computes) by up to a millisecond. The same expression as ReleaseMetricsStore._seconds.
ALTER TABLE releases ADD COLUMN lead_seconds REAL;

UPDATE releases SET lead_seconds = round((CAST(strftime('%s', CASE WHEN substr(finished_at, 20, 1) = '.' THEN substr(finished_at, 1, 19) || ltrim(substr(finished_at, 21), '0123456789') ELSE finished_at END) AS INTEGER) - CAST(strftime('%s', CASE WHEN substr(commit_time, 20, 1) = '.' THEN substr(commit_time, 1, 19) || ltrim(substr(commit_time, 21), '0123456789') ELSE commit_time END) AS INTEGER)) + (CASE WHEN substr(finished_at, 20, 1) = '.' THEN CAST('0' || substr(finished_at, 20, 10) AS REAL) ELSE 0 END) - (CASE WHEN substr(commit_time, 20, 1) = '.' THEN CAST('0' || substr(commit_time, 20, 10) AS REAL) ELSE 0 END), 3)
WHERE finished_at IS NOT NULL AND commit_time IS NOT NULL AND commit_time <> '';

CREATE TRIGGER releases_lead_seconds_insert AFTER INSERT ON releases
WHEN NEW.finished_at IS NOT NULL AND NEW.commit_time IS NOT NULL AND NEW.commit_time <> ''
BEGIN
    UPDATE releases SET lead_seconds = round((CAST(strftime('%s', CASE WHEN substr(NEW.finished_at, 20, 1) = '.' THEN substr(NEW.finished_at, 1, 19) || ltrim(substr(NEW.finished_at, 21), '0123456789') ELSE NEW.finished_at END) AS INTEGER) - CAST(strftime('%s', CASE WHEN substr(NEW.commit_time, 20, 1) = '.' THEN substr(NEW.commit_time, 1, 19) || ltrim(substr(NEW.commit_time, 21), '0123456789') ELSE NEW.commit_time END) AS INTEGER)) + (CASE WHEN substr(NEW.finished_at, 20, 1) = '.' THEN CAST('0' || substr(NEW.finished_at, 20, 10) AS REAL) ELSE 0 END) - (CASE WHEN substr(NEW.commit_time, 20, 1) = '.' THEN CAST('0' || substr(NEW.commit_time, 20, 10) AS REAL) ELSE 0 END), 3)
    WHERE release_id = NEW.release_id;
END;

CREATE TRIGGER releases_lead_seconds_update AFTER UPDATE OF commit_time, finished_at ON releases
BEGIN
    UPDATE releases SET lead_seconds = CASE WHEN NEW.finished_at IS NOT NULL AND NEW.commit_time IS NOT NULL
        AND NEW.commit_time <> '' THEN round((CAST(strftime('%s', CASE WHEN substr(NEW.finished_at, 20, 1) = '.' THEN substr(NEW.finished_at, 1, 19) || ltrim(substr(NEW.finished_at, 21), '0123456789') ELSE NEW.finished_at END) AS INTEGER) - CAST(strftime('%s', CASE WHEN substr(NEW.commit_time, 20, 1) = '.' THEN substr(NEW.commit_time, 1, 19) || ltrim(substr(NEW.commit_time, 21), '0123456789') ELSE NEW.commit_time END) AS INTEGER)) + (CASE WHEN substr(NEW.finished_at, 20, 1) = '.' THEN CAST('0' || substr(NEW.finished_at, 20, 10) AS REAL) ELSE 0 END) - (CASE WHEN substr(NEW.commit_time, 20, 1) = '.' THEN CAST('0' || substr(NEW.commit_time, 20, 10) AS REAL) ELSE 0 END), 3) END
    WHERE release_id = NEW.release_id;
END;

-- releases_metrics: a window of finished releases (environment, finished_at range) with every column
-- the counts, groups and lead times read, so counting never visits the table rows.
-- releases_outcome: the failed and rolled-back releases of a window alone (about a tenth), for
-- recovery time and rework.
-- releases_service_finished: per service in finish order, for "the next deployed release", "the
-- next successful release" (a fix forward) and "the newest release before an incident".
-- releases_change: an incident raised under a change number finds its release.
CREATE INDEX releases_metrics ON releases (environment, finished_at, outcome, service, team, lead_seconds, release_id);
CREATE INDEX releases_outcome ON releases (environment, outcome, finished_at, service, team, release_id, started_at);
CREATE INDEX releases_service_finished ON releases (environment, service, finished_at, release_id, outcome, team);
CREATE INDEX releases_change ON releases (change_number);

-- Calibration: the gate stages written in a window (each names the decision's inputs digest).
CREATE INDEX release_stages_stage_recorded ON release_stages (stage, recorded_at);
