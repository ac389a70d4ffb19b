-- relops.release ledger, schema version 26 (PostgreSQL): DORA over release records counted in the
-- database (issue 18), so a million records answer in seconds (docs/metrics.md).
--
-- Lead time as a column, as V21 did for deployments: the seconds from the manifest's commit time
-- to the release's finish, set on write by the trigger (whoever writes the row), so reading a
-- window's lead times parses no timestamps. Not a generated column: the commit time is stored as
-- the manifest gave it, and one that is not a timestamp must leave the column NULL, not refuse
-- the release's write.
ALTER TABLE releases ADD COLUMN lead_seconds double precision;

CREATE FUNCTION relops_release_lead_seconds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.lead_seconds := NULL;
    IF NEW.finished_at IS NOT NULL AND NEW.commit_time IS NOT NULL AND NEW.commit_time <> '' THEN
        BEGIN
            NEW.lead_seconds := CAST(EXTRACT(EPOCH FROM (CAST(NEW.finished_at AS timestamptz)
                - CAST(NEW.commit_time AS timestamptz))) AS double precision);
        EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
            NEW.lead_seconds := NULL;
        END;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER releases_lead_seconds BEFORE INSERT OR UPDATE OF commit_time, finished_at ON releases
    FOR EACH ROW EXECUTE FUNCTION relops_release_lead_seconds();

UPDATE releases SET finished_at = finished_at WHERE finished_at IS NOT NULL AND commit_time IS NOT NULL;

-- releases_metrics: a window of finished releases (environment, finished_at range) with every column
-- the counts, groups and lead times read (index-only once vacuum has marked the pages visible).
-- releases_outcome: the failed and rolled-back releases of a window alone (about a tenth), for
-- recovery time and rework.
-- releases_service_finished: per service in finish order, for "the next deployed release", "the
-- next successful release" (a fix forward) and "the newest release before an incident".
-- releases_change: an incident raised under a change number finds its release.
CREATE INDEX releases_metrics ON releases (environment, finished_at) INCLUDE (outcome, service, team, lead_seconds, release_id);
CREATE INDEX releases_outcome ON releases (environment, outcome, finished_at) INCLUDE (service, team, release_id, started_at);
CREATE INDEX releases_service_finished ON releases (environment, service, finished_at, release_id) INCLUDE (outcome, team);
CREATE INDEX releases_change ON releases (change_number);

-- Calibration: the gate stages written in a window (each names the decision's inputs digest).
CREATE INDEX release_stages_stage_recorded ON release_stages (stage, recorded_at);
