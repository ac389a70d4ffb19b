# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metrics' queries over release records (schema V22), over the ledger core.

One release record is one unit of delivery (docs/metrics.md): the metrics read
the ``releases`` rows, the stages that say when a failure was detected and when
service was restored, and the incidents a release led to. The SQL stays plain
(no dialect-specific arithmetic): durations are computed in Python by
:mod:`.releases` from the fixed-width timestamps.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger

Row = Dict[str, Any]
# Releases that changed something in the environment; an aborted one was refused before anything changed.
DEPLOYED_OUTCOMES = ("successful", "failed", "rolled_back")
FINISHED_OUTCOMES = (*DEPLOYED_OUTCOMES, "aborted")


class ReleaseMetricsStore:
    """Read-only queries the delivery metrics make on release records."""

    def __init__(self, ledger: Ledger) -> None:
        self.backend = ledger.backend

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

    def incidents_opened(self, environment: str, start: str, until: str) -> List[Row]:
        """Incidents opened in [start, until) in an environment, oldest first."""
        with self.backend.transaction(write=False) as cursor:
            return cursor.all(
                "SELECT id, service, ci, external_id, caused_by, opened_at, resolved_at FROM incidents"
                " WHERE environment = ? AND opened_at >= ? AND opened_at < ? ORDER BY opened_at, id",
                (environment, start, until),
            )


def _decoded(text: Any) -> Dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return dict(value) if isinstance(value, dict) else {}
