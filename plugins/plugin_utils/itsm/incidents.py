# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An incident opened and resolved in the ITSM a task uses, with the ledger row the metrics count.

On the ``local`` backend the ledger row *is* the ITSM incident (its number is ``INC`` and the row id).
On ``servicenow`` the incident is opened in the instance's ``incident`` table (``cmdb_ci``, ``caused_by``
and ``correlation_id`` linking it to the CI, the change and the caller's record), and the ledger keeps a
copy (source ``servicenow``, external id the number, as ``incident state=imported`` would) so the
delivery metrics, which read the ledger, count it with the times the caller knows best: opened when
the failure was detected, resolved when service was restored.

A ServiceNow failure is returned as a warning, not raised: the caller (a release's recovery) must still
record the incident and roll back when the instance is down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.incident_store import incident_number
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

from .backend import ItsmBackend, Record
from .errors import ITSMError


@dataclass
class IncidentOutcome:
    """The ledger row, the incident as the ITSM holds it (None when it could not be reached), and warnings."""

    row: Dict[str, Any]
    itsm: Optional[Record]
    changed: bool
    warnings: List[str] = field(default_factory=list)


def open_incident(backend: ItsmBackend, ledger: Ledger, actor: Actor, incident: Mapping[str, Any]) -> IncidentOutcome:
    """Open ``incident`` (the ledger's shape plus ``correlation_id``, ``caused_by``, ``version``) in the
    ITSM once: a rerun with the same correlation id finds it, in the ledger and on the instance."""
    correlation_id = str(incident.get("correlation_id") or "")
    if not correlation_id:
        raise LedgerError(
            "opening an incident in the ITSM needs correlation_id (e.g. relops-release-<release id>), "
            "so a rerun finds the incident instead of opening another"
        )
    found = ledger.find_incidents(limit=1, correlation_id=correlation_id)
    if found:
        row = found[0]
        itsm, warnings = read_itsm_incident(backend, row)
        return IncidentOutcome(row, itsm, False, warnings)
    if backend.name == "local":
        row, created = ledger.record_incident(
            actor, dict(incident, external_id=incident.get("external_id") or correlation_id)
        )
        return IncidentOutcome(row, _listed(backend, incident_number(int(row["id"]))), created)
    details = dict(incident.get("details") or {})
    try:
        opened, _created = backend.ensure_incident(_itsm_fields(incident))
    except ITSMError as exc:
        details["itsm_error"] = str(exc)
        row, created = ledger.record_incident(
            actor, dict(incident, external_id=incident.get("external_id") or correlation_id, details=details)
        )
        warning = (
            "the %s incident could not be opened (%s); it is in the ledger only (id %s): open it there by hand, "
            "linked to change %s" % (backend.name, exc, row["id"], incident.get("caused_by") or "(none)")
        )
        return IncidentOutcome(row, None, created, [warning])
    details["itsm_incident"] = {"backend": backend.name, "number": opened["number"], "sys_id": opened["sys_id"]}
    row, created = ledger.record_incident(
        actor, dict(incident, source=backend.name, external_id=str(opened["number"]), details=details)
    )
    return IncidentOutcome(row, opened, created)


def resolve_incident(
    backend: ItsmBackend,
    ledger: Ledger,
    row: Mapping[str, Any],
    resolved_at: str,
    resolution: Mapping[str, Optional[str]],
) -> IncidentOutcome:
    """Resolve the incident of ledger ``row`` in the ITSM and in the ledger (at ``resolved_at``, when service
    was restored). ``resolution`` holds ``close_code`` and ``close_notes`` (both required: ServiceNow makes
    them mandatory to resolve) and optionally ``root_cause`` and ``component``."""
    close_code, close_notes = resolution.get("close_code") or "", resolution.get("close_notes") or ""
    if not (close_code and close_notes):
        raise LedgerError(
            "resolving incident %s in the ITSM needs close_code and close_notes (its Resolution code and "
            "notes); give both" % row["id"]
        )
    warnings: List[str] = []
    itsm: Optional[Record] = None
    changed = False
    number = itsm_number(backend, row)
    if backend.name != "local" and number:
        try:
            itsm, changed = backend.ensure_incident_resolved(number, close_code, close_notes, resolved_at)
        except ITSMError as exc:
            warnings.append(
                "the %s incident %s could not be resolved (%s); resolve it there by hand, service was restored at %s"
                % (backend.name, number, exc, resolved_at)
            )
    elif backend.name != "local":
        warnings.append("incident %s is in the ledger only, not on %s; resolved there only" % (row["id"], backend.name))
    if row["status"] != "resolved":
        row = ledger.resolve_incident(
            int(row["id"]),
            resolved_at,
            resolution.get("root_cause"),
            resolution.get("component"),
            details={"close_code": close_code, "close_notes": close_notes},
        )
        changed = True
    if backend.name == "local":
        itsm = _listed(backend, incident_number(int(row["id"])))
    return IncidentOutcome(dict(row), itsm, changed, warnings)


def itsm_number(backend: ItsmBackend, row: Mapping[str, Any]) -> Optional[str]:
    """The incident's number in the backend: the ledger's own on local, the instance's when it was opened there."""
    if backend.name == "local":
        return incident_number(int(row["id"]))
    opened = (row.get("details") or {}).get("itsm_incident") or {}
    if opened.get("backend", backend.name) != backend.name:
        return None
    return str(opened["number"]) if opened.get("number") else None


def read_itsm_incident(backend: ItsmBackend, row: Mapping[str, Any]) -> Tuple[Optional[Record], List[str]]:
    """The incident of a ledger row as the ITSM holds it now, or None with the reason as a warning."""
    number = itsm_number(backend, row)
    if number is None:
        error = (row.get("details") or {}).get("itsm_error") or "it was opened in the ledger only"
        return None, ["incident %s is in the ledger only, not on %s (%s)" % (row["id"], backend.name, error)]
    try:
        return _listed(backend, number), []
    except ITSMError as exc:
        return None, ["incident %s could not be read from %s: %s" % (number, backend.name, exc)]


def _listed(backend: ItsmBackend, number: str) -> Optional[Record]:
    found = backend.list_incidents({"number": number}, None, 1)
    return found[0] if found else None


def _itsm_fields(incident: Mapping[str, Any]) -> Dict[str, Any]:
    """The ledger-shaped incident as ``ItsmBackend.create_incident`` takes it."""
    return {
        "short_description": incident["title"],
        "description": incident.get("description"),
        "service": incident["service"],
        "environment": incident["environment"],
        "version": incident.get("version"),
        "severity": incident.get("severity") or "high",
        "cmdb_ci": incident.get("ci") or None,
        "caused_by": incident.get("caused_by") or None,
        "correlation_id": incident["correlation_id"],
        "source": incident.get("source"),
        "details": incident.get("details") or {},
    }
