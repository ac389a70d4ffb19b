-- relops.release ledger, schema version 21 (PostgreSQL): delivery metrics without sorting or parsing a window (issue 11).
--
-- Lead time as a stored column: the seconds from commit to finish, the very expression the metrics
-- queries computed per row before (so every answer stays the same), computed once on write instead
-- of parsing two timestamps per row on every read. A generated column needs an IMMUTABLE
-- expression; text to timestamptz is only STABLE because a timestamp without an offset would be
-- read in the session's time zone, but ledger timestamps always end in Z (UTC), so the result does
-- not depend on the session. Adding the column rewrites the table once.
CREATE FUNCTION relops_seconds_between(later text, earlier text) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CAST(EXTRACT(EPOCH FROM (CAST(later AS timestamptz) - CAST(earlier AS timestamptz))) AS double precision) $$;

ALTER TABLE deployments ADD COLUMN lead_seconds double precision GENERATED ALWAYS AS (
    CASE WHEN commit_at IS NOT NULL THEN relops_seconds_between(finished_at, commit_at) END
) STORED;

DROP INDEX deployments_metrics;
CREATE INDEX deployments_metrics ON deployments (environment, finished_at)
    INCLUDE (status, service, team, started_at, commit_at, planned, remedies_incident, lead_seconds);

-- Recovery time only concerns failed and rolled-back deployments (about a tenth of them); with the
-- status before the finish time this index reads just those rows of a window (index-only once
-- vacuum has marked the pages visible).
CREATE INDEX deployments_env_status_finished ON deployments (environment, status, finished_at)
    INCLUDE (started_at, service, team);
