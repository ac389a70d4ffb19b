# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a release record holds: its stages, its outcomes and its errors.

One record per release attempt. Each stage of the release writes what it saw
as one stage entry; the record's columns keep the facts that gates decide from
and metrics count by (docs/release-record.md).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError

STAGES = (
    "manifest",
    "verification",
    "risk",
    "quality",
    "change",
    "readiness",
    "gate",
    "permit",
    "migrations",
    "deployment",
    "smoke",
    "health",
    "stabilization",
    "incident",
    "rollback",
    "outcome",
)
OUTCOMES = ("in_progress", "successful", "failed", "rolled_back", "aborted")
FINAL_OUTCOMES = OUTCOMES[1:]
# The manifest facts a record keeps in columns (metrics read them for lead time, teams and runbooks).
MANIFEST_COLUMNS = ("owner", "team", "source_revision", "commit_time", "runbook")


class ReleaseRecordError(LedgerError):
    """A release record cannot be written or read as asked: the value and the fix."""


def check_stage(stage: str) -> None:
    if stage not in STAGES:
        raise ReleaseRecordError("stage %r is not a release stage; use one of %s" % (stage, ", ".join(STAGES)))


def check_outcome(outcome: str) -> None:
    if outcome not in FINAL_OUTCOMES:
        raise ReleaseRecordError(
            "outcome %r is not a release outcome; use one of %s" % (outcome, ", ".join(FINAL_OUTCOMES))
        )


def default_release_id(service: str, environment: str, version: str, digest: str) -> str:
    """The id of a release when the caller names none: the same artifact to the same place is one release,
    so a rerun after a crash continues its record instead of counting twice."""
    return "%s@%s/%s/%s" % (service, version, environment, digest.rsplit(":", maxsplit=1)[-1][:12])


def manifest_facts(manifest: Mapping[str, Any]) -> Dict[str, Optional[str]]:
    """The manifest's fields the record keeps in columns (docs/artifacts.md lists the manifest's fields)."""
    return {column: _text(manifest.get(column)) for column in MANIFEST_COLUMNS}


def _text(value: Any) -> Optional[str]:
    return None if value in (None, "") else str(value)
