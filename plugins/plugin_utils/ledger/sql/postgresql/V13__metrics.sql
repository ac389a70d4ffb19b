-- relops.release ledger, schema version 13 (PostgreSQL): what delivery metrics need (issue 11).
-- Deployments gain the team, the configuration item (CI) incidents are raised against,
-- the source revision and its commit time (lead time), whether the deployment was planned
-- and which incident it remedies (rework), and the runbook path (runbook compliance).
-- Incidents gain their CI, component, root cause and the id in the system they came from.
-- incident_deployments holds explicit links; window links are computed when metrics are read.

ALTER TABLE deployments ADD COLUMN team TEXT;
ALTER TABLE deployments ADD COLUMN ci TEXT;
ALTER TABLE deployments ADD COLUMN source_revision TEXT;
ALTER TABLE deployments ADD COLUMN commit_at TEXT;
ALTER TABLE deployments ADD COLUMN planned INTEGER NOT NULL DEFAULT 1;
ALTER TABLE deployments ADD COLUMN remedies_incident BIGINT;
ALTER TABLE deployments ADD COLUMN runbook TEXT;

UPDATE deployments SET
    team = CAST(details AS jsonb) ->> 'team',
    ci = coalesce(CAST(details AS jsonb) ->> 'ci', service),
    source_revision = CAST(details AS jsonb) ->> 'source_revision',
    runbook = CAST(details AS jsonb) ->> 'runbook'
WHERE details IS NOT NULL AND details <> '';

UPDATE deployments SET ci = service WHERE ci IS NULL;

CREATE INDEX deployments_env_finished ON deployments (environment, finished_at);
CREATE INDEX deployments_ci_env_finished ON deployments (ci, environment, finished_at, id);

ALTER TABLE incidents ADD COLUMN ci TEXT;
ALTER TABLE incidents ADD COLUMN component TEXT;
ALTER TABLE incidents ADD COLUMN root_cause TEXT;
ALTER TABLE incidents ADD COLUMN external_id TEXT;

UPDATE incidents SET ci = service WHERE ci IS NULL;

CREATE INDEX incidents_env_opened ON incidents (environment, opened_at);
CREATE UNIQUE INDEX incidents_source_external_id ON incidents (source, external_id);

CREATE TABLE incident_deployments (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    deployment_id BIGINT NOT NULL REFERENCES deployments (id),
    linked_at TEXT NOT NULL,
    PRIMARY KEY (incident_id, deployment_id)
);

CREATE INDEX incident_deployments_deployment ON incident_deployments (deployment_id);
