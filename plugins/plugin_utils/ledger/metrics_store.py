# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger queries for delivery metrics and incidents (schema V13, issue 11).

A mixin of :class:`~.store.Ledger`. The heavy work (linking incidents to
deployments, counting, medians per period) runs in the database, so a ledger
of a million deployments answers in seconds; Python only shapes the answer.

Incident links: an explicit link (``incident_deployments``) wins; otherwise an
incident is linked to the newest finished deployment on the same CI and
environment that finished at most ``link_window_seconds`` before the incident
was opened (never "the last deployment however long ago").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp

from .errors import LedgerError

if TYPE_CHECKING:
    from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

    from .backends import Backend, Cursor, Row
    from .url import LedgerURL

INCIDENT_STATUSES = ("open", "resolved")
METRIC_GROUPS = ("service", "team")
GRANULARITIES = ("day", "week", "month")

# Facts about a deployment taken from its details (the release manifest's fields) when recorded.
_FACT_KEYS = ("team", "ci", "source_revision", "commit_at", "runbook")


@dataclass(frozen=True)
class MetricsScope:
    """Which deployments a metric covers: one environment, optionally one service or team, a time range."""

    environment: str
    start: str
    end: str
    incident_until: str
    link_window_seconds: int
    service: Optional[str] = None
    team: Optional[str] = None
    # Local calendar: the IANA name (PostgreSQL converts itself) and, for SQLite, the UTC offset in
    # seconds of each stretch of the window, as (end of stretch or None for the last, offset).
    timezone: str = "UTC"
    offsets: Tuple[Tuple[Optional[str], int], ...] = ((None, 0),)


class MetricsStore:
    """Incident records and delivery-metric aggregation; mixed into ``Ledger``."""

    backend: "Backend"
    url: "LedgerURL"

    if TYPE_CHECKING:

        def _touch_run(self, cursor: "Cursor", actor: "Actor", now: str) -> bool: ...

    # Deployment facts

    def _store_deployment_facts(
        self, cursor: "Cursor", deployment_id: int, service: str, details: Mapping[str, Any]
    ) -> None:
        """Copy the metric-relevant fields of a deployment's details into their V13 columns."""
        facts = {key: _text_or_none(details.get(key)) for key in _FACT_KEYS}
        # The CI name incidents are raised against (cmdb_deployment's app_ci is a sys_id, not a name).
        facts["ci"] = facts["ci"] or service
        planned = details.get("planned", True)
        remedies = details.get("remedies_incident")
        cursor.execute(
            "UPDATE deployments SET team = ?, ci = ?, source_revision = ?, commit_at = ?, runbook = ?, planned = ?,"
            " remedies_incident = ? WHERE id = ?",
            (
                facts["team"],
                facts["ci"],
                facts["source_revision"],
                facts["commit_at"],
                facts["runbook"],
                1 if planned else 0,
                int(remedies) if remedies is not None else None,
                deployment_id,
            ),
        )

    def import_deployments(self, actor: "Actor", deployments: Sequence[Mapping[str, Any]], batch: int = 500) -> int:
        """Insert deployments that happened elsewhere (history, generated ledgers) with their own times.

        Each mapping holds the deployments columns (service, version, environment, status, started_at,
        finished_at, and optionally team, ci, commit_at, planned, remedies_incident, strategy,
        artifact_digest, change_id, source_revision, runbook, details). Rows go in multi-row batches.
        """
        columns = (
            "run_id",
            "service",
            "version",
            "environment",
            "status",
            "strategy",
            "artifact_digest",
            "change_id",
            "started_at",
            "finished_at",
            "details",
            "team",
            "ci",
            "source_revision",
            "commit_at",
            "planned",
            "remedies_incident",
            "runbook",
        )
        row_sql = "(" + ", ".join("?" for _column in columns) + ")"
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            for offset in range(0, len(deployments), batch):
                chunk = deployments[offset : offset + batch]
                params: List[Any] = []
                for item in chunk:
                    params.extend(_deployment_values(actor.run_id, item))
                cursor.execute(
                    "INSERT INTO deployments ("
                    + ", ".join(columns)
                    + ") VALUES "
                    + ", ".join(row_sql for _item in chunk),
                    params,
                )
        return len(deployments)

    def refresh_statistics(self) -> None:
        """Update the query planner's statistics (ANALYZE), e.g. after importing history in bulk.

        PostgreSQL's autovacuum does this by itself after enough changes; a freshly filled ledger
        has none yet, and without them the planner picks nested loops for the metric joins.
        """
        with self.backend.transaction(write=True) as cursor:
            cursor.execute("ANALYZE")

    def get_deployment(self, deployment_id: int) -> Optional["Row"]:
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one("SELECT * FROM deployments WHERE id = ?", (deployment_id,))
        return _decode(row, ("details",)) if row else None

    def deployments_between(self, scope: MetricsScope, limit: int = 100000) -> List["Row"]:
        """Finished deployments in a scope, oldest first, with how many incidents each is linked to."""
        facts, params = self._facts_sql(scope)
        sql = (
            "SELECT dep.*, dd.details FROM (" + facts + ") dep JOIN deployments dd ON dd.id = dep.id"
            " ORDER BY dep.finished_at, dep.id LIMIT ?"
        )
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(sql, (*params, limit))
        return [_decode(row, ("details",)) for row in rows]

    # Incidents

    def record_incident(self, actor: "Actor", incident: Mapping[str, Any]) -> Tuple["Row", bool]:
        """Insert an incident; one with a known (source, external id) is returned unchanged instead."""
        now = now_timestamp()
        source = incident.get("source") or "manual"
        with self.backend.transaction(write=True) as cursor:
            if incident.get("external_id"):
                existing = cursor.one(
                    "SELECT * FROM incidents WHERE source = ? AND external_id = ?", (source, incident["external_id"])
                )
                if existing:
                    return _decode(existing, ("details",)), False
            self._touch_run(cursor, actor, now)
            row = self._insert_incident(cursor, actor, incident, now)
        return _decode(row, ("details",)), True

    def sync_incidents(
        self, actor: "Actor", added: Sequence[Mapping[str, Any]], resolved: Sequence[Tuple[int, str]]
    ) -> None:
        """Add incidents and mark others resolved (id, resolved_at) in one transaction: all of it or none."""
        now = now_timestamp()
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now)
            for incident in added:
                self._insert_incident(cursor, actor, incident, now)
            for incident_id, resolved_at in resolved:
                cursor.execute(
                    "UPDATE incidents SET status = 'resolved', resolved_at = ? WHERE id = ?", (resolved_at, incident_id)
                )

    def _insert_incident(self, cursor: "Cursor", actor: "Actor", incident: Mapping[str, Any], now: str) -> "Row":
        row = cursor.one(
            "INSERT INTO incidents (run_id, service, environment, version, title, severity, status, source,"
            " opened_at, resolved_at, details, ci, component, root_cause, external_id, correlation_id, caused_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (
                actor.run_id,
                incident["service"],
                incident["environment"],
                incident.get("version"),
                incident["title"],
                incident.get("severity") or "moderate",
                "resolved" if incident.get("resolved_at") else "open",
                incident.get("source") or "manual",
                incident.get("opened_at") or now,
                incident.get("resolved_at"),
                json.dumps(dict(incident.get("details") or {}), sort_keys=True, separators=(",", ":")),
                incident.get("ci") or incident["service"],
                incident.get("component"),
                incident.get("root_cause"),
                incident.get("external_id"),
                incident.get("correlation_id") or None,
                incident.get("caused_by") or None,
            ),
        )
        if row is None:
            raise LedgerError("the new incident was written but cannot be read back; check the ledger's health")
        for deployment_id in incident.get("deployment_ids") or ():
            self._link(cursor, int(row["id"]), int(deployment_id), now)
        return row

    def import_incidents(self, actor: "Actor", incidents: Sequence[Mapping[str, Any]], batch: int = 500) -> int:
        """Insert incidents from history in multi-row batches (no idempotency check: for generated ledgers)."""
        columns = (
            "run_id",
            "service",
            "environment",
            "title",
            "severity",
            "status",
            "source",
            "opened_at",
            "resolved_at",
            "details",
            "ci",
            "component",
            "root_cause",
            "external_id",
        )
        row_sql = "(" + ", ".join("?" for _column in columns) + ")"
        with self.backend.transaction(write=True) as cursor:
            self._touch_run(cursor, actor, now_timestamp())
            for offset in range(0, len(incidents), batch):
                chunk = incidents[offset : offset + batch]
                params: List[Any] = []
                for item in chunk:
                    params.extend(
                        [
                            actor.run_id,
                            item["service"],
                            item["environment"],
                            item["title"],
                            item.get("severity") or "moderate",
                            "resolved" if item.get("resolved_at") else "open",
                            item.get("source") or "manual",
                            item["opened_at"],
                            item.get("resolved_at"),
                            "{}",
                            item.get("ci") or item["service"],
                            item.get("component"),
                            item.get("root_cause"),
                            item.get("external_id"),
                        ]
                    )
                cursor.execute(
                    "INSERT INTO incidents (" + ", ".join(columns) + ") VALUES " + ", ".join(row_sql for _i in chunk),
                    params,
                )
        return len(incidents)

    def resolve_incident(
        self,
        incident_id: int,
        resolved_at: str,
        root_cause: Optional[str],
        component: Optional[str],
        details: Optional[Mapping[str, Any]] = None,
    ) -> "Row":
        """Mark an incident resolved (keeping a root cause or component already recorded when none is given);
        ``details`` (a resolution's close code and notes, say) are merged into the incident's details."""
        with self.backend.transaction(write=True) as cursor:
            current = cursor.one("SELECT details FROM incidents WHERE id = ?", (incident_id,))
            if current is None:
                raise LedgerError("incident %d is not in the ledger; list incidents to find its id" % incident_id)
            merged = dict(_decode(current, ("details",)).get("details") or {}, **dict(details or {}))
            cursor.execute(
                "UPDATE incidents SET status = 'resolved', resolved_at = ?, root_cause = coalesce(?, root_cause),"
                " component = coalesce(?, component), details = ? WHERE id = ?",
                (
                    resolved_at,
                    root_cause,
                    component,
                    json.dumps(merged, sort_keys=True, separators=(",", ":")),
                    incident_id,
                ),
            )
            row = cursor.one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return _decode(_required(row, incident_id), ("details",))

    def get_incident(
        self, incident_id: Optional[int] = None, source: Optional[str] = None, external_id: Optional[str] = None
    ) -> Optional["Row"]:
        with self.backend.transaction(write=False) as cursor:
            if incident_id is not None:
                row = cursor.one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
            else:
                row = cursor.one(
                    "SELECT * FROM incidents WHERE source = ? AND external_id = ?", (source or "manual", external_id)
                )
        return _decode(row, ("details",)) if row else None

    def link_incident(self, incident_id: int, deployment_id: int) -> bool:
        """Link an incident to a deployment explicitly; return False when the link existed."""
        with self.backend.transaction(write=True) as cursor:
            for table, key in (("incidents", incident_id), ("deployments", deployment_id)):
                if cursor.one("SELECT id FROM %s WHERE id = ?" % table, (key,)) is None:
                    raise LedgerError("%s %d is not in the ledger; pass an existing id" % (table[:-1], key))
            return self._link(cursor, incident_id, deployment_id, now_timestamp())

    def _link(self, cursor: "Cursor", incident_id: int, deployment_id: int, now: str) -> bool:
        return (
            cursor.execute(
                "INSERT INTO incident_deployments (incident_id, deployment_id, linked_at) VALUES (?, ?, ?)"
                " ON CONFLICT (incident_id, deployment_id) DO NOTHING",
                (incident_id, deployment_id, now),
            )
            == 1
        )

    def deployment_ids_for_change(self, change_id: str) -> List[int]:
        """Deployments made under a change (ServiceNow's incident.caused_by names the change)."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT id FROM deployments WHERE change_id = ? ORDER BY id", (change_id,))
        return [int(row["id"]) for row in rows]

    def list_incident_records(
        self,
        environment: Optional[str] = None,
        service: Optional[str] = None,
        status: Optional[str] = None,
        since: Optional[str] = None,
        limit: int = 100,
    ) -> List["Row"]:
        """Incidents newest first, each with the ids of the deployments it is linked to explicitly."""
        clauses = []
        params: List[Any] = []
        for column, value in (("environment", environment), ("service", service), ("status", status)):
            if value is not None:
                clauses.append("i.%s = ?" % column)
                params.append(value)
        if since is not None:
            clauses.append("i.opened_at >= ?")
            params.append(since)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT i.* FROM incidents i" + where + " ORDER BY i.opened_at DESC, i.id DESC LIMIT ?",
                (*params, limit),
            )
            links = cursor.all(
                "SELECT x.incident_id, x.deployment_id FROM incident_deployments x JOIN (SELECT i.id FROM incidents i"
                + where
                + " ORDER BY i.opened_at DESC, i.id DESC LIMIT ?) chosen ON chosen.id = x.incident_id",
                (*params, limit),
            )
        linked: Dict[int, List[int]] = {}
        for link in links:
            linked.setdefault(int(link["incident_id"]), []).append(int(link["deployment_id"]))
        return [
            {**_decode(row, ("details",)), "deployment_ids": sorted(linked.get(int(row["id"]), []))} for row in rows
        ]

    def incidents_with_links(
        self, environment: str, since: str, until: str, link_window_seconds: int, service: Optional[str] = None
    ) -> List["Row"]:
        """Incidents opened in [since, until) with the deployment each is linked to (None when unlinked)."""
        where = " WHERE i.environment = ? AND i.opened_at >= ? AND i.opened_at < ?"
        params: List[Any] = [environment, since, until]
        if service is not None:
            where += " AND i.service = ?"
            params.append(service)
        sql = (
            "SELECT i.*, coalesce(x.deployment_id, w.deployment_id) AS deployment_id,"
            " CASE WHEN x.deployment_id IS NOT NULL THEN 'explicit' WHEN w.deployment_id IS NOT NULL THEN 'window'"
            " END AS link FROM incidents i"
            " LEFT JOIN (SELECT incident_id, max(deployment_id) AS deployment_id FROM incident_deployments"
            " GROUP BY incident_id) x ON x.incident_id = i.id"
            " LEFT JOIN ("
            + self._window_links_sql("c")
            + ") w ON w.incident_id = i.id"
            + where
            + " ORDER BY i.opened_at, i.id"
        )
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(sql, (environment, since, until, link_window_seconds, *params))
        return [_decode(row, ("details",)) for row in rows]

    def component_stats(self, environment: str, since: str, until: str) -> List["Row"]:
        """Incidents per service, component and root cause, with resolved counts and total open time."""
        duration = self._seconds("i.resolved_at", "i.opened_at")
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT i.service, coalesce(i.component, i.service) AS component,"
                " coalesce(i.root_cause, 'unknown') AS root_cause, count(*) AS incidents,"
                " sum(CASE WHEN i.status = 'resolved' THEN 1 ELSE 0 END) AS resolved,"
                " sum(CASE WHEN i.resolved_at IS NOT NULL THEN " + duration + " ELSE 0 END) AS resolution_seconds"
                " FROM incidents i WHERE i.environment = ? AND i.opened_at >= ? AND i.opened_at < ?"
                " GROUP BY i.service, coalesce(i.component, i.service), coalesce(i.root_cause, 'unknown')"
                " ORDER BY count(*) DESC, i.service, coalesce(i.component, i.service)",
                (environment, since, until),
            )

    # Report inputs

    def decisions_for_run(self, run_id: str) -> List["Row"]:
        """A run's gate decisions, oldest first."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT * FROM decisions WHERE run_id = ? ORDER BY decided_at, id", (run_id,))
        return [_decode(row, ("reasons",)) for row in rows]

    def decisions_between(self, since: str, until: str) -> List["Row"]:
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT * FROM decisions WHERE decided_at >= ? AND decided_at < ? ORDER BY decided_at, id",
                (since, until),
            )
        return [_decode(row, ("reasons",)) for row in rows]

    def successful_deployments_after(self, since: str) -> List["Row"]:
        """Service, version and finish time of every successful deployment finished since a time."""
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT service, version, environment, finished_at FROM deployments"
                " WHERE status = 'successful' AND finished_at >= ? ORDER BY finished_at",
                (since,),
            )

    def artifact_digest_of_run(self, run_id: str) -> Optional[str]:
        """The artifact a run deployed (its newest deployment's digest), or None."""
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one(
                "SELECT artifact_digest FROM deployments WHERE run_id = ? AND artifact_digest IS NOT NULL"
                " ORDER BY id DESC LIMIT 1",
                (run_id,),
            )
        return str(row["artifact_digest"]) if row else None

    # Delivery metrics

    def delivery_counts(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str] = None
    ) -> List["Row"]:
        """Per period (and group): deployments, successes, failed or rolled back ones, rollbacks, rework.

        ``period`` is the first local day of the period (YYYY-MM-DD), or ``all`` without a granularity.
        One pass over the covering index ``deployments_metrics`` (V17) with no incident links and no
        timestamp arithmetic: what incidents add comes from :meth:`linked_deployments`.
        """
        facts, params = self._period_rows_sql(scope, granularity, group, "d.status, d.planned, d.remedies_incident")
        sql = (
            "SELECT f.period, f.grp, count(*) AS deployments,"
            " sum(CASE WHEN f.status = 'successful' THEN 1 ELSE 0 END) AS successful,"
            " sum(CASE WHEN f.status IN ('failed', 'rolled_back') THEN 1 ELSE 0 END) AS failed,"
            " sum(CASE WHEN f.status = 'rolled_back' THEN 1 ELSE 0 END) AS rollbacks,"
            " sum(CASE WHEN f.planned = 0 OR f.remedies_incident IS NOT NULL THEN 1 ELSE 0 END) AS rework"
            " FROM (" + facts + ") f GROUP BY f.period, f.grp"
        )
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(sql, params)

    def linked_deployments(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str] = None
    ) -> List["Row"]:
        """Deployments in scope linked to an incident: how many, how many still open, and the recovery time.

        ``recovery_seconds`` runs from the first linked incident's opening to the last one's
        resolution, and is NULL while any of them is open. Starts from the incidents (a window's
        worth, each linked by one index look-up), so it costs nothing per unlinked deployment.
        """
        where, scoped = _scope_filter(scope)
        period, period_params = self._period_sql(scope, granularity)
        span = self._seconds("f.last_resolved", "f.first_opened")
        sql = (
            "SELECT "
            + period
            + " AS period, "
            + _group_sql(group)
            + " AS grp, d.id, d.status, f.incidents, f.open_incidents,"
            " CASE WHEN f.open_incidents = 0 THEN " + span + " END AS recovery_seconds"
            " FROM (" + self._links_sql() + ") f CROSS JOIN deployments d" + where + " AND d.id = f.deployment_id"
        )
        window = [scope.environment, scope.start, scope.incident_until, scope.link_window_seconds]
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(sql, (*period_params, *window, *scoped))

    def failed_deployments(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str] = None
    ) -> List["Row"]:
        """Failed and rolled-back deployments in scope with the seconds from start to finish.

        Reads only those rows through ``deployments_env_status_finished`` (V21): their rollback
        duration is the recovery time of those without a linked incident.
        """
        rows_sql, params = self._period_rows_sql(
            scope,
            granularity,
            group,
            "d.id, " + self._seconds("d.finished_at", "d.started_at") + " AS recovery_seconds",
            " AND d.status IN ('failed', 'rolled_back')",
        )
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(rows_sql, params)

    def lead_histogram(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str] = None
    ) -> List["Row"]:
        """How many lead times fall in each bucket, per period and group (``samples``).

        Buckets (:meth:`_lead_bucket_sql`) grow with the value (two significant decimal digits of
        whole seconds), so a median's rank names the one bucket to read exactly with
        :meth:`lead_values`; counting needs no sort of the values.
        """
        values, params = self._lead_values_sql(scope, granularity, group)
        sql = (
            "SELECT v.period, v.grp, v.bucket, count(*) AS samples FROM ("
            + values
            + ") v GROUP BY v.period, v.grp, v.bucket"
        )
        with self.backend.transaction(write=False) as cursor:
            self._allow_sort_memory(cursor)
            return cursor.all(sql, params)

    def lead_values(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str], buckets: Sequence[int]
    ) -> List["Row"]:
        """Every lead time in the given buckets, with its period, group and bucket (exact values)."""
        if not buckets:
            return []
        values, params = self._lead_values_sql(scope, granularity, group)
        marks = ", ".join("?" for _bucket in buckets)
        sql = "SELECT v.period, v.grp, v.bucket, v.value FROM (" + values + ") v WHERE v.bucket IN (" + marks + ")"
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(sql, (*params, *buckets))

    def _lead_values_sql(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str]
    ) -> Tuple[str, List[Any]]:
        """Period, group, lead seconds and bucket of every deployment in scope with a lead time.

        ``lead_seconds`` (V21) is stored (PostgreSQL) or held by the covering index (SQLite): the
        window's timestamps are not parsed again.
        """
        rows_sql, params = self._period_rows_sql(
            scope, granularity, group, "d.lead_seconds AS value", " AND d.lead_seconds IS NOT NULL"
        )
        sql = (
            "SELECT w.period, w.grp, w.value, "
            + self._lead_bucket_sql("w.value")
            + " AS bucket FROM ("
            + rows_sql
            + ") w"
        )
        return sql, params

    def _lead_bucket_sql(self, value: str) -> str:
        """A bucket number that never decreases as the value grows: whole seconds below 100, then the
        number of digits and the first two digits (9 to 10 % wide); -1 for everything below 0 s."""
        if self.url.dialect == "postgresql":
            whole = "CAST(trunc(%s) AS bigint)" % value
            text = "CAST(%s AS text)" % whole
        else:
            whole = "CAST(%s AS INTEGER)" % value
            text = "CAST(%s AS TEXT)" % whole
        return (
            "CASE WHEN %(whole)s < 0 THEN -1 WHEN %(whole)s < 100 THEN %(whole)s"
            " ELSE length(%(text)s) * 100 + CAST(substr(%(text)s, 1, 2) AS INTEGER) END"
            % {"whole": whole, "text": text}
        )

    def _allow_sort_memory(self, cursor: "Cursor") -> None:
        """Let PostgreSQL sort and hash a window in memory for this transaction only.

        The default work_mem (4 MB) sends the sort of a 90-day window of a million-deployment
        ledger (about 250,000 rows) to disk. SQLite sorts in memory already.
        """
        if self.url.dialect == "postgresql":
            cursor.execute("SET LOCAL work_mem = '64MB'")

    def deployment_day_counts(self, scope: MetricsScope) -> List["Row"]:
        """Successful deployments per local day (``label`` YYYY-MM-DD)."""
        where, scoped = _scope_filter(scope)
        day, day_params = self._local_period_sql(scope, "d.finished_at", "day")
        # Grouped outside: PostgreSQL cannot match a GROUP BY expression holding its own parameters.
        sql = (
            "SELECT q.label, count(*) AS deployments FROM (SELECT "
            + day
            + " AS label FROM deployments d"
            + where
            + " AND d.status = 'successful') q GROUP BY q.label"
        )
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(sql, (*day_params, *scoped))

    def _period_sql(self, scope: MetricsScope, granularity: Optional[str]) -> Tuple[str, List[Any]]:
        """SQL for a deployment's period: its first local day, or ``'all'`` without a granularity."""
        if granularity is None:
            return "'all'", []
        return self._local_period_sql(scope, "d.finished_at", granularity)

    def _period_rows_sql(
        self,
        scope: MetricsScope,
        granularity: Optional[str],
        group: Optional[str],
        columns: str,
        condition: str = "",
    ) -> Tuple[str, List[Any]]:
        """Period, group and the given columns of every finished deployment in scope (and condition)."""
        where, scoped = _scope_filter(scope)
        period, period_params = self._period_sql(scope, granularity)
        sql = (
            "SELECT "
            + period
            + " AS period, "
            + _group_sql(group)
            + " AS grp, "
            + columns
            + " FROM deployments d"
            + where
            + condition
        )
        return sql, [*period_params, *scoped]

    def _local_period_sql(self, scope: MetricsScope, column: str, granularity: str) -> Tuple[str, List[Any]]:
        """SQL for the first local day (YYYY-MM-DD) of the day, ISO week or month a timestamp falls in."""
        if granularity not in GRANULARITIES:
            raise LedgerError("granularity %r is not one of %s" % (granularity, ", ".join(GRANULARITIES)))
        if scope.offsets == ((None, 0),) and granularity != "week":
            # UTC days and months are prefixes of the fixed-width timestamps: no parsing per row.
            return ("substr(%s, 1, 10)" % column if granularity == "day" else "substr(%s, 1, 7) || '-01'" % column), []
        if self.url.dialect == "postgresql":
            local = "(CAST(%s AS timestamptz) AT TIME ZONE ?)" % column
            if granularity != "day":
                local = "date_trunc('%s', %s)" % (granularity, local)
            return "to_char(%s, 'YYYY-MM-DD')" % local, [scope.timezone]
        params: List[Any] = []
        if len(scope.offsets) == 1:
            shift = "?"
            params.append("%+d seconds" % scope.offsets[0][1])
        else:
            shift = "CASE"
            for until, offset in scope.offsets[:-1]:
                shift += " WHEN %s < ? THEN ?" % column
                params.extend([until, "%+d seconds" % offset])
            shift += " ELSE ? END"
            params.append("%+d seconds" % scope.offsets[-1][1])
        extra = {"day": "", "week": ", 'weekday 0', '-6 days'", "month": ", 'start of month'"}[granularity]
        return "date(%s, %s%s)" % (column, shift, extra), params

    def _facts_sql(self, scope: MetricsScope) -> Tuple[str, List[Any]]:
        """One row per finished deployment in scope, with its failure, rework, lead and recovery facts."""
        where, scoped = _scope_filter(scope)
        lead = self._seconds("d.finished_at", "d.commit_at")
        span = self._seconds("f.last_resolved", "f.first_opened")
        rollback = self._seconds("d.finished_at", "d.started_at")
        sql = (
            "SELECT d.id, d.service, d.team, d.version, d.ci, d.status, d.started_at, d.finished_at, d.commit_at,"
            " d.source_revision, d.planned, d.remedies_incident, d.runbook, d.run_id, d.artifact_digest, d.change_id,"
            " f.incidents, f.first_opened, f.last_resolved,"
            " CASE WHEN d.status IN ('failed', 'rolled_back') OR f.incidents IS NOT NULL THEN 1 ELSE 0 END"
            " AS failure,"
            " CASE WHEN d.planned = 0 OR d.remedies_incident IS NOT NULL THEN 1 ELSE 0 END AS rework,"
            " CASE WHEN d.commit_at IS NOT NULL THEN " + lead + " END AS lead_seconds,"
            " CASE WHEN f.incidents IS NOT NULL THEN (CASE WHEN f.open_incidents = 0 THEN " + span + " END)"
            " WHEN d.status IN ('failed', 'rolled_back') THEN " + rollback + " END AS recovery_seconds"
            " FROM deployments d LEFT JOIN (" + self._links_sql() + ") f ON f.deployment_id = d.id" + where
        )
        window = [scope.environment, scope.start, scope.incident_until, scope.link_window_seconds]
        return sql, [*window, *scoped]

    def _links_sql(self) -> str:
        """Per linked deployment: its incidents (4 parameters, see _window_links_sql), first opening,
        last resolution and how many are still open."""
        return (
            "SELECT l.deployment_id, count(*) AS incidents, min(l.opened_at) AS first_opened,"
            " max(l.resolved_at) AS last_resolved,"
            " sum(CASE WHEN l.resolved_at IS NULL THEN 1 ELSE 0 END) AS open_incidents FROM ("
            + self._window_links_sql("w")
            # CROSS JOIN: SQLite then reads the (few) explicit links and looks their incidents up,
            # instead of scanning every incident.
            + " UNION SELECT x.incident_id, x.deployment_id, i.opened_at, i.resolved_at"
            " FROM incident_deployments x CROSS JOIN incidents i WHERE i.id = x.incident_id) l"
            " GROUP BY l.deployment_id"
        )

    def _window_links_sql(self, alias: str) -> str:
        """Incidents (environment, opened in a range; 4 parameters with the window) and their window link.

        Incidents with an explicit link are left out: the explicit link replaces the window rule.
        The newest deployment before each incident is one look-up in the index on (ci, environment,
        finished_at), which returns its id and finish time together as ``id|finished_at``: the
        deployments table is never joined (a join let PostgreSQL hash every deployment).
        """
        position = "strpos" if self.url.dialect == "postgresql" else "instr"
        integer = "bigint" if self.url.dialect == "postgresql" else "INTEGER"
        separator = "%s(%s.newest, '|')" % (position, alias)
        finished = "substr(%s.newest, %s + 1)" % (alias, separator)
        return (
            "SELECT %(a)s.incident_id,"
            " CAST(substr(%(a)s.newest, 1, %(separator)s - 1) AS %(integer)s) AS deployment_id,"
            " %(a)s.opened_at, %(a)s.resolved_at FROM (SELECT i.id AS incident_id, i.opened_at, i.resolved_at,"
            " (SELECT CAST(d2.id AS %(text)s) || '|' || d2.finished_at FROM deployments d2"
            " WHERE d2.ci = coalesce(i.ci, i.service) AND d2.environment = i.environment"
            " AND d2.finished_at <= i.opened_at AND d2.status <> 'in_progress'"
            " ORDER BY d2.finished_at DESC, d2.id DESC LIMIT 1) AS newest"
            " FROM incidents i WHERE i.environment = ? AND i.opened_at >= ? AND i.opened_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM incident_deployments xx WHERE xx.incident_id = i.id)%(fence)s) %(a)s"
            " WHERE %(gap)s <= ?"
        ) % {
            "a": alias,
            "separator": separator,
            "integer": integer,
            "text": "text" if self.url.dialect == "postgresql" else "TEXT",
            "fence": self._fence(),
            "gap": self._seconds(alias + ".opened_at", finished),
        }

    def _fence(self) -> str:
        """A no-op clause that keeps a subquery's expressions evaluated once per row.

        Without it both databases inline the subquery into the outer query, which then evaluates
        the expression (a timestamp difference, an index look-up) once per use. SQLite never
        flattens a subquery with a LIMIT into an outer query with a WHERE clause or an aggregate,
        PostgreSQL never pulls up one with an OFFSET.
        """
        return " LIMIT -1" if self.url.dialect == "sqlite" else " OFFSET 0"

    def _seconds(self, later: str, earlier: str) -> str:
        """SQL for the seconds between two ledger timestamps (the one dialect-specific expression)."""
        if self.url.dialect == "postgresql":
            return (
                "CAST(EXTRACT(EPOCH FROM (CAST(%s AS timestamptz) - CAST(%s AS timestamptz))) AS double precision)"
                % (
                    later,
                    earlier,
                )
            )
        # julianday() is a float of days: about 20 microseconds of noise, so keep milliseconds.
        return "round((julianday(%s) - julianday(%s)) * 86400.0, 3)" % (later, earlier)


def _group_sql(group: Optional[str]) -> str:
    """SQL naming a deployment's group (service, or team with ``(none)`` for no team), or ``''``."""
    if group is not None and group not in METRIC_GROUPS:
        raise LedgerError("metrics group %r is not one of %s" % (group, ", ".join(METRIC_GROUPS)))
    return {"service": "d.service", "team": "coalesce(d.team, '(none)')"}.get(group or "", "''")


def _scope_filter(scope: MetricsScope) -> Tuple[str, List[Any]]:
    where = " WHERE d.environment = ? AND d.finished_at >= ? AND d.finished_at < ? AND d.status <> 'in_progress'"
    params: List[Any] = [scope.environment, scope.start, scope.end]
    if scope.service is not None:
        where += " AND d.service = ?"
        params.append(scope.service)
    if scope.team is not None:
        where += " AND d.team = ?"
        params.append(scope.team)
    return where, params


def _deployment_values(run_id: str, item: Mapping[str, Any]) -> List[Any]:
    if item.get("status") not in ("in_progress", "successful", "failed", "rolled_back"):
        raise LedgerError(
            "deployment status %r is not one of in_progress, successful, failed, rolled_back" % item.get("status")
        )
    details = dict(item.get("details") or {})
    return [
        run_id,
        item["service"],
        item["version"],
        item["environment"],
        item["status"],
        item.get("strategy"),
        item.get("artifact_digest"),
        item.get("change_id"),
        item["started_at"],
        item.get("finished_at"),
        json.dumps(details, sort_keys=True, separators=(",", ":")),
        item.get("team", details.get("team")),
        item.get("ci") or details.get("ci") or item["service"],
        item.get("source_revision", details.get("source_revision")),
        item.get("commit_at"),
        0 if item.get("planned", True) is False else 1,
        item.get("remedies_incident"),
        item.get("runbook", details.get("runbook")),
    ]


def _text_or_none(value: Any) -> Optional[str]:
    return None if value is None or value == "" else str(value)


def _required(row: Optional["Row"], incident_id: int) -> "Row":
    if row is None:
        raise LedgerError("incident %d was updated but cannot be read back" % incident_id)
    return row


def _decode(row: "Row", columns: Sequence[str]) -> "Row":
    decoded = dict(row)
    for column in columns:
        if isinstance(decoded.get(column), str):
            try:
                decoded[column] = json.loads(decoded[column])
            except ValueError:
                pass
    return decoded
