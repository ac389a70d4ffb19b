# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metrics' queries over release records (schema V22), over the ledger core.

One release record is one unit of delivery (docs/metrics.md): the metrics read
the ``releases`` rows, the stages that say when a failure was detected and when
service was restored, and the incidents a release led to.

The counting runs in the database (issue 18: a million records in seconds), as
the deployments path does (``ledger/metrics_store.py``, whose period, duration
and bucket expressions these queries reuse): counts per period and group in one
pass over the ``releases_metrics`` index (V26), the failed and rolled-back
releases alone with their recovery seconds and the release after each (rework),
and lead times as a histogram plus the values of the buckets holding a median.
Python then adds what the (few) incidents change. Rows are read one per release
only by :meth:`ReleaseMetricsStore.finished_releases` (per-release listings).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.metrics_store import MetricsScope

Row = Dict[str, Any]
# Releases that changed something in the environment; an aborted one was refused before anything changed.
DEPLOYED_OUTCOMES = ("successful", "failed", "rolled_back")
FINISHED_OUTCOMES = (*DEPLOYED_OUTCOMES, "aborted")
FAILED_OUTCOMES = ("failed", "rolled_back")
# A timestamp's whole seconds (strftime('%s') applies any offset; the fraction is cut off first, since
# SQLite would round it to milliseconds, even up to the next second) and its fraction read from the text.
_SQLITE_WHOLE = (
    "CAST(strftime('%s', CASE WHEN substr({0}, 20, 1) = '.'"
    " THEN substr({0}, 1, 19) || ltrim(substr({0}, 21), '0123456789') ELSE {0} END) AS INTEGER)"
)
_SQLITE_FRACTION = "(CASE WHEN substr({0}, 20, 1) = '.' THEN CAST('0' || substr({0}, 20, 10) AS REAL) ELSE 0 END)"
_SQLITE_SECONDS = (
    "round(("
    + _SQLITE_WHOLE.format("{later}")
    + " - "
    + _SQLITE_WHOLE.format("{earlier}")
    + ") + "
    + _SQLITE_FRACTION.format("{later}")
    + " - "
    + _SQLITE_FRACTION.format("{earlier}")
    + ", 3)"
)
_DEPLOYED_SQL = "('successful', 'failed', 'rolled_back')"
_FINISHED_SQL = "('successful', 'failed', 'rolled_back', 'aborted')"


class ReleaseMetricsStore:
    """Read-only queries the delivery metrics make on release records."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.backend = ledger.backend
        self.dialect = ledger.url.dialect

    def has_records(self, environment: str) -> bool:
        """Whether any release in this environment was recorded as a release record."""
        with self.backend.transaction(write=False) as cursor:
            row = cursor.one("SELECT 1 AS found FROM releases WHERE environment = ? LIMIT 1", (environment,))
        return row is not None

    def finished_releases(
        self,
        environment: str,
        start: str,
        end: str,
        service: Optional[str] = None,
        team: Optional[str] = None,
    ) -> List[Row]:
        """Finished releases to an environment (finished in [start, end)), oldest first, without stages."""
        sql = (
            "SELECT release_id, service, environment, version, team, commit_time, outcome, rolled_back_to,"
            " change_number, strategy, started_at, finished_at FROM releases"
            " WHERE environment = ? AND finished_at >= ? AND finished_at < ? AND outcome IN (?, ?, ?, ?)"
        )
        params: List[Any] = [environment, start, end, *FINISHED_OUTCOMES]
        for column, value in (("service", service), ("team", team)):
            if value is not None:
                sql += " AND %s = ?" % column
                params.append(value)
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(sql + " ORDER BY finished_at, release_id", params)

    def previous_deployed(self, environment: str, before: str, services: Sequence[str]) -> Dict[str, Row]:
        """Per service, its newest deployed release finished before a time (what a window's first release follows)."""
        found: Dict[str, Row] = {}
        with self.backend.transaction(write=False) as cursor:
            for service in services:
                row = cursor.one(
                    "SELECT release_id, service, outcome, finished_at FROM releases WHERE environment = ?"
                    " AND service = ? AND finished_at < ? AND outcome IN (?, ?, ?)"
                    " ORDER BY finished_at DESC, release_id DESC LIMIT 1",
                    (environment, service, before, *DEPLOYED_OUTCOMES),
                )
                if row is not None:
                    found[service] = dict(row)
        return found

    def recovery_stages(self, release_ids: Sequence[str]) -> Dict[str, Dict[str, Row]]:
        """Per release, the newest ``deployment``, ``rollback`` and ``incident`` entries (data decoded)."""
        stages: Dict[str, Dict[str, Row]] = {}
        if not release_ids:
            return stages
        with self.backend.transaction(write=False) as cursor:
            for offset in range(0, len(release_ids), 500):
                chunk = list(release_ids[offset : offset + 500])
                rows = cursor.all(
                    "SELECT release_id, stage, recorded_at, data FROM release_stages WHERE stage IN"
                    " ('deployment', 'rollback', 'incident') AND release_id IN (%s) ORDER BY id"
                    % ", ".join("?" for _id in chunk),
                    chunk,
                )
                for row in rows:
                    stages.setdefault(row["release_id"], {})[row["stage"]] = {
                        "recorded_at": row["recorded_at"],
                        "data": _decoded(row["data"]),
                    }
        return stages

    def release_attributes(self, scope: MetricsScope) -> Dict[str, Row]:
        """Per deployed release in scope: its strategy, start, and its newest ``risk`` and ``deployment``
        stages' data (risk band, class, files changed, migrations; the strategy the role used)."""
        where, params = self._scope_sql(scope, " AND r.outcome IN " + _DEPLOYED_SQL)
        sql = (
            "SELECT r.release_id, r.strategy, r.started_at, "
            + _newest_stage("s.data", "risk", "r")
            + " AS risk, "
            + _newest_stage("s.data", "deployment", "r")
            + " AS deployment FROM releases r"
            + where
        )
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(sql, params)
        return {
            str(row["release_id"]): {**row, "risk": _decoded(row["risk"]), "deployment": _decoded(row["deployment"])}
            for row in rows
        }

    def gated_releases(self, since: str, until: str) -> Dict[str, Row]:
        """Per decision inputs digest, the release whose ``gate`` stage, written in [since, until),
        records that decision (the gate writes its decision record, digest included, into the stage)."""
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT r.release_id, r.service, r.environment, r.version, r.digest, s.data FROM release_stages s"
                " JOIN releases r ON r.release_id = s.release_id WHERE s.stage = 'gate' AND s.recorded_at >= ?"
                " AND s.recorded_at < ? ORDER BY s.id",
                (since, until),
            )
        found: Dict[str, Row] = {}
        for row in rows:
            digest = _decoded(row.pop("data")).get("inputs_digest")
            if digest:
                found[str(digest)] = row
        return found

    def released_after(
        self, service: str, environment: str, version: str, after: str, digest: Optional[str] = None
    ) -> Optional[Row]:
        """The first successful release of a service's version to an environment finished after a time
        (of the same artifact when ``digest`` is given: a later attempt of the same release)."""
        sql = (
            "SELECT release_id, finished_at FROM releases WHERE service = ? AND environment = ? AND version = ?"
            " AND outcome = 'successful' AND finished_at > ?"
        )
        params: List[Any] = [service, environment, version, after]
        if digest is not None:
            sql += " AND digest = ?"
            params.append(digest)
        with self.backend.transaction(write=False) as cursor:
            return cursor.one(sql + " ORDER BY finished_at LIMIT 1", params)

    def incidents_opened(self, environment: str, start: str, until: str) -> List[Row]:
        """Incidents opened in [start, until) in an environment, oldest first."""
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT id, service, ci, external_id, caused_by, opened_at, resolved_at FROM incidents"
                " WHERE environment = ? AND opened_at >= ? AND opened_at < ? ORDER BY opened_at, id",
                (environment, start, until),
            )

    # Counting in the database (docs/metrics.md, "Release records: one release, one unit")

    def release_counts(self, scope: MetricsScope, granularity: Optional[str], group: Optional[str]) -> List[Row]:
        """Per period (its first local day, or ``all``), group and lead-time bucket: finished releases,
        deployed ones, successful, failed or rolled back, rolled back, and lead times (``samples``).

        One pass over the ``releases_metrics`` index (V26) gives both the counts and the lead-time
        histogram of :meth:`lead_values` (``bucket`` NULL for releases without a lead time).
        """
        bucket = self.ledger._lead_bucket_sql("r.lead_seconds")
        rows, params = self._period_rows_sql(
            scope,
            granularity,
            group,
            "r.outcome, CASE WHEN r.outcome = 'successful' AND r.lead_seconds IS NOT NULL THEN %s END AS bucket"
            % bucket,
        )
        sql = (
            "SELECT q.period, q.grp, q.bucket, count(*) AS releases,"
            " sum(CASE WHEN q.outcome IN " + _DEPLOYED_SQL + " THEN 1 ELSE 0 END) AS deployments,"
            " sum(CASE WHEN q.outcome = 'successful' THEN 1 ELSE 0 END) AS successful,"
            " sum(CASE WHEN q.outcome IN ('failed', 'rolled_back') THEN 1 ELSE 0 END) AS failed,"
            " sum(CASE WHEN q.outcome = 'rolled_back' THEN 1 ELSE 0 END) AS rollbacks,"
            " sum(CASE WHEN q.bucket IS NOT NULL THEN 1 ELSE 0 END) AS samples"
            " FROM (" + rows + ") q GROUP BY q.period, q.grp, q.bucket"
        )
        with self.backend.transaction(write=False) as cursor:
            self.ledger._allow_sort_memory(cursor)
            return cursor.all(sql, params)

    def successful_per_day(self, scope: MetricsScope) -> List[Row]:
        """Successful releases per local day (``label`` YYYY-MM-DD)."""
        rows, params = self._period_rows_sql(scope, "day", None, "r.outcome", " AND r.outcome = 'successful'")
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT q.period AS label, count(*) AS successful FROM (" + rows + ") q GROUP BY q.period", params
            )

    def failed_releases(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str], incidents: bool = True
    ) -> List[Row]:
        """The failed and rolled-back releases in scope: period, group, recovery seconds, the incident
        their own ``incident`` stage names, and the period and group of the service's next deployed
        release in scope (the rework that follows a failure). Without ``incidents`` (none opened in
        the window) the incident stages are not read.

        Recovery runs from detection (the rollback stage's ``detected_at``, else the newest
        deployment stage, else the start) to service restored (the rollback stage's
        ``restored_at``; else, rolled back, the rollback stage or the finish; else the next
        successful release of the service, a fix forward; else NULL: not restored).
        """
        where, params = self._scope_sql(scope, " AND r.outcome IN ('failed', 'rolled_back')")
        # The range first (n.finished_at >= r's), so the look-up seeks the index instead of reading the service.
        follows = "n.finished_at >= r.finished_at AND (n.finished_at > r.finished_at OR n.release_id > r.release_id)"
        team = " AND n.team = ?" if scope.team is not None else ""
        team_params = [scope.team] if scope.team is not None else []
        inner = (
            "SELECT r.release_id, r.service, r.team, r.outcome, r.started_at, r.finished_at,"
            # One look-up for both: the time the rollback stage was recorded, then its data.
            + " %s AS rollback," % _newest_stage("s.recorded_at || '|' || s.data", "rollback", "r")
            + (
                " %s AS incident_data," % _newest_stage("s.data", "incident", "r")
                if incidents
                else " NULL AS incident_data,"
            )
            # Only a failed release (not rolled back) waits for the next successful one: a fix forward.
            + " CASE WHEN r.outcome = 'failed' THEN (SELECT n.finished_at FROM releases n"
            " WHERE n.environment = r.environment AND n.service = r.service AND n.outcome = 'successful' AND "
            + follows
            + team
            + " ORDER BY n.finished_at, n.release_id LIMIT 1) END AS fixed_at,"
            " (SELECT n.finished_at || '|' || coalesce(n.team, '') FROM releases n WHERE n.environment = r.environment"
            " AND n.service = r.service AND n.outcome IN "
            + _DEPLOYED_SQL
            + " AND n.finished_at < ? AND "
            + follows
            + team
            + " ORDER BY n.finished_at, n.release_id LIMIT 1) AS next_deployed"
            " FROM releases r" + where + self.ledger._fence()
        )
        position = "strpos" if self.dialect == "postgresql" else "instr"
        rollback_at = "substr(f.rollback, 1, %s(f.rollback, '|') - 1)" % position
        rollback_data = "substr(f.rollback, %s(f.rollback, '|') + 1)" % position
        # The deployment stage is read only when the rollback stage noted no detection (coalesce stops early).
        detected = "coalesce(%s, %s, f.started_at)" % (
            self._json_text(rollback_data, "detected_at"),
            _newest_stage("s.recorded_at", "deployment", "f"),
        )
        restored = (
            "CASE WHEN %(noted)s IS NOT NULL THEN %(noted)s WHEN f.outcome = 'rolled_back'"
            " THEN coalesce(%(rollback_at)s, f.finished_at) ELSE f.fixed_at END"
        ) % {"noted": self._json_text(rollback_data, "restored_at"), "rollback_at": rollback_at}
        middle = (
            "SELECT f.release_id, f.service, f.team, f.finished_at, f.outcome, "
            + detected
            + " AS detected_at, "
            + restored
            + " AS restored_at, "
            + self._json_text("f.incident_data", "id")
            + " AS incident_id, f.next_deployed FROM ("
            + inner
            + ") f"
            + self.ledger._fence()
        )
        separator = "%s(m.next_deployed, '|')" % position
        next_finished = "substr(m.next_deployed, 1, %s - 1)" % separator
        next_team = "substr(m.next_deployed, %s + 1)" % separator
        period, period_params = self._period_sql(scope, granularity, "m.finished_at")
        next_period, next_params = self._period_sql(scope, granularity, next_finished)
        sql = (
            "SELECT m.release_id, m.outcome, m.incident_id, "
            + period
            + " AS period, "
            + _group_sql(group, "m.service", "m.team")
            + " AS grp, CASE WHEN m.restored_at IS NOT NULL THEN "
            + self._seconds("m.restored_at", "m.detected_at")
            + " END AS recovery_seconds, CASE WHEN m.next_deployed IS NOT NULL THEN "
            + next_period
            + " END AS next_period, CASE WHEN m.next_deployed IS NOT NULL THEN "
            + _group_sql(group, "m.service", next_team)
            + " END AS next_grp FROM ("
            + middle
            + ") m"
        )
        all_params = [*period_params, *next_params, *team_params, scope.end, *team_params, *params]
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(sql, all_params)

    def releases_by_id(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str], release_ids: Sequence[str]
    ) -> List[Row]:
        """The given releases (few: those an incident names) with their period and group."""
        if not release_ids:
            return []
        marks = ", ".join("?" for _id in release_ids)
        rows, params = self._period_rows_sql(
            scope,
            granularity,
            group,
            "r.release_id, r.service, r.team, r.outcome, r.finished_at",
            " AND r.release_id IN (%s)" % marks,
        )
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(rows, [*params, *release_ids])

    def releases_by_change(self, scope: MetricsScope, numbers: Sequence[str]) -> Dict[str, str]:
        """Per change number, the newest finished release in scope made under it."""
        if not numbers:
            return {}
        where, params = self._scope_sql(scope, " AND r.change_number IN (%s)" % ", ".join("?" for _n in numbers))
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all(
                "SELECT r.change_number, r.release_id FROM releases r"
                + where
                + " ORDER BY r.finished_at, r.release_id",
                [*params, *numbers],
            )
        return {str(row["change_number"]): str(row["release_id"]) for row in rows}

    def newest_deployed_before(self, scope: MetricsScope, service: str, moment: str) -> Optional[Row]:
        """The newest deployed release of a service in scope finished at or before a moment."""
        where, params = self._scope_sql(
            scope, " AND r.outcome IN " + _DEPLOYED_SQL + " AND r.service = ? AND r.finished_at <= ?"
        )
        with self.backend.transaction(write=False) as cursor:
            return cursor.one(
                "SELECT r.release_id, r.finished_at FROM releases r"
                + where
                + " ORDER BY r.finished_at DESC, r.release_id DESC LIMIT 1",
                [*params, service, moment],
            )

    def next_deployed(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str], release: Row
    ) -> Optional[Row]:
        """The service's first deployed release in scope after a release (or after the window's start
        when ``release`` holds no ``finished_at``), with its period and group."""
        condition = " AND r.outcome IN " + _DEPLOYED_SQL + " AND r.service = ?"
        extra: List[Any] = [release["service"]]
        if release.get("finished_at") is not None:
            condition += " AND r.finished_at >= ? AND (r.finished_at > ? OR r.release_id > ?)"
            extra += [release["finished_at"], release["finished_at"], release["release_id"]]
        rows, params = self._period_rows_sql(scope, granularity, group, "r.release_id, r.finished_at", condition)
        with self.backend.transaction(write=False) as cursor:
            return cursor.one(rows + " ORDER BY r.finished_at, r.release_id LIMIT 1", [*params, *extra])

    def revision_history(self, scope: MetricsScope) -> List[Row]:
        """Successful releases with a source revision, oldest first: each service's newest one before
        the window (the release whose commits were already out), then those in the window.

        Lead time from git counts every commit between a release's revision and the previous one's.
        """
        where, params = self._scope_sql(
            scope, " AND r.outcome = 'successful' AND r.source_revision IS NOT NULL AND r.source_revision <> ''"
        )
        columns = "SELECT r.service, r.source_revision, r.finished_at, r.release_id FROM releases r"
        with self.backend.transaction(write=False) as cursor:
            window = cursor.all(columns + where + " ORDER BY r.finished_at, r.release_id", params)
            before = []
            for service in sorted({str(row["service"]) for row in window}):
                row = cursor.one(
                    columns + " WHERE r.environment = ? AND r.service = ? AND r.finished_at < ?"
                    " AND r.outcome = 'successful' AND r.source_revision IS NOT NULL AND r.source_revision <> ''"
                    + (" AND r.team = ?" if scope.team is not None else "")
                    + " ORDER BY r.finished_at DESC, r.release_id DESC LIMIT 1",
                    [scope.environment, service, scope.start, *([scope.team] if scope.team is not None else [])],
                )
                if row is not None:
                    before.append(row)
        return sorted(before, key=lambda row: (row["finished_at"], row["release_id"])) + window

    def services_in_scope(self, scope: MetricsScope) -> List[str]:
        """The services with a finished release in scope."""
        where, params = self._scope_sql(scope)
        with self.backend.transaction(write=False) as cursor:
            rows = cursor.all("SELECT DISTINCT r.service FROM releases r" + where, params)
        return sorted(str(row["service"]) for row in rows)

    def lead_values(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str], buckets: Sequence[int]
    ) -> List[Row]:
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
        """Period, group, lead seconds (commit time to finish, V26's column) and bucket of each successful release."""
        rows, params = self._period_rows_sql(
            scope,
            granularity,
            group,
            "r.lead_seconds AS value",
            " AND r.outcome = 'successful' AND r.lead_seconds IS NOT NULL",
        )
        sql = (
            "SELECT w.period, w.grp, w.value, "
            + self.ledger._lead_bucket_sql("w.value")
            + " AS bucket FROM ("
            + rows
            + ") w"
        )
        return sql, params

    def _period_rows_sql(
        self, scope: MetricsScope, granularity: Optional[str], group: Optional[str], columns: str, condition: str = ""
    ) -> Tuple[str, List[Any]]:
        """Period, group and the given columns of every finished release in scope (and condition)."""
        where, scoped = self._scope_sql(scope, condition)
        period, period_params = self._period_sql(scope, granularity, "r.finished_at")
        sql = (
            "SELECT "
            + period
            + " AS period, "
            + _group_sql(group, "r.service", "r.team")
            + " AS grp, "
            + columns
            + " FROM releases r"
            + where
        )
        return sql, [*period_params, *scoped]

    def _period_sql(self, scope: MetricsScope, granularity: Optional[str], column: str) -> Tuple[str, List[Any]]:
        if granularity is None:
            return "'all'", []
        return self.ledger._local_period_sql(scope, column, granularity)

    def _scope_sql(self, scope: MetricsScope, condition: str = "") -> Tuple[str, List[Any]]:
        """Finished releases of the environment finished in [start, end), of the service and team asked for."""
        where = (
            " WHERE r.environment = ? AND r.finished_at >= ? AND r.finished_at < ? AND r.outcome IN " + _FINISHED_SQL
        )
        params: List[Any] = [scope.environment, scope.start, scope.end]
        for column, value in (("service", scope.service), ("team", scope.team)):
            if value is not None:
                where += " AND r.%s = ?" % column
                params.append(value)
        return where + condition, params

    def _seconds(self, later: str, earlier: str) -> str:
        """SQL for the seconds between two RFC 3339 timestamps, to the microsecond as Python computes them.

        SQLite's date functions read only milliseconds, so its whole seconds (``strftime('%s')``, which
        also applies an offset) and the fractions (read from the text) are taken apart.
        """
        if self.dialect == "postgresql":
            return self.ledger._seconds(later, earlier)
        return _SQLITE_SECONDS.format(later=later, earlier=earlier)

    def _json_text(self, column: str, key: str) -> str:
        """SQL for a JSON object's member as text, NULL when absent or empty."""
        if self.dialect == "postgresql":
            return "nullif(CAST(%s AS jsonb) ->> '%s', '')" % (column, key)
        return "nullif(CAST(json_extract(%s, '$.%s') AS TEXT), '')" % (column, key)


def _newest_stage(column: str, stage: str, alias: str) -> str:
    """SQL for a column of a release's newest entry of a stage (the newest entry is its value)."""
    return (
        "(SELECT %s FROM release_stages s WHERE s.release_id = %s.release_id AND s.stage = '%s'"
        " ORDER BY s.id DESC LIMIT 1)" % (column, alias, stage)
    )


def _group_sql(group: Optional[str], service: str, team: str) -> str:
    """SQL naming a release's group: its service, its team (``(none)`` without one), or ``''``."""
    if group is not None and group not in ("service", "team"):
        raise LedgerError("metrics group %r is not one of service, team" % group)
    if group == "service":
        return service
    if group == "team":
        return "coalesce(nullif(%s, ''), '(none)')" % team
    return "''"


def _decoded(text: Any) -> Dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return dict(value) if isinstance(value, dict) else {}
