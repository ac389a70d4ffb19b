# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collect the facts a policy's risk rules read, each with the evidence it came from."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend, Record
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import resolve_ci_ids
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.policy import Policy

FAILED_OUTCOMES = ("failed", "rolled_back")
# ServiceNow's business criticality choices read "1 - most critical" .. "4 - not critical".
CRITICALITY = re.compile(r"^\s*([1-4])\b")


def ci_facts(
    backend: ItsmBackend, names: List[str], depth: int = 3, environment: Optional[str] = None
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Criticality (1 most critical) and blast radius (CIs depending on the changed ones).

    A service named in ``names`` is read as its CI in ``environment`` (see itsm.cmdb.resolve_ci).
    """
    roots = resolve_ci_ids(backend, names, environment)
    affected, services = backend.impact(roots, "upstream", depth)
    tiers = [tier for ci in backend.get_cis(roots) + affected if (tier := criticality_tier(ci)) is not None]
    facts = {
        "ci_criticality": str(min(tiers)) if tiers else None,
        "blast_radius": len(affected),
        "business_services": len(services),
    }
    evidence = {
        "cis": roots,
        "affected": [ci.get("name") or ci["sys_id"] for ci in affected],
        "business_services": [ci.get("name") or ci["sys_id"] for ci in services],
    }
    return facts, evidence


def criticality_tier(ci: Record) -> Optional[int]:
    match = CRITICALITY.match(str(ci.get("busines_criticality") or ""))
    return int(match.group(1)) if match else None


def ledger_facts(
    ledger: Optional[Ledger], service: str, environment: str, window: int
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Change failure rate over the last deployments, and days since the service's last incident."""
    if ledger is None:
        return {"change_failure_rate": None, "days_since_incident": None}, {"deployments_read": 0}
    outcomes = ledger.finished_deployment_outcomes(service, environment, window)
    failed = sum(1 for status in outcomes if status in FAILED_OUTCOMES)
    rate = round(100.0 * failed / len(outcomes), 2) if outcomes else None
    last = ledger.last_incident_at(service)
    days = round((utc_now() - parse_timestamp(last)).total_seconds() / 86400.0, 2) if last else None
    return (
        {"change_failure_rate": rate, "days_since_incident": days},
        {"deployments_read": len(outcomes), "failed_deployments": failed, "last_incident_at": last},
    )


def test_facts(junit: List[str], coverage: List[str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    # Imported here: the JUnit/Cobertura readers are only needed by risk_assess with test inputs, and every
    # collection module is compiled from source on import (Ansible's collection loader keeps no byte-code).
    from ansible_collections.relops.release.plugins.plugin_utils.quality import (  # noqa: PLC0415
        merge_cobertura,
        merge_junit,
    )

    facts: Dict[str, Any] = {"tests_passed": None, "test_count": None, "line_coverage": None}
    evidence: Dict[str, Any] = {}
    if junit:
        results = merge_junit(junit)
        if results.problems:
            raise LedgerError("cannot read the test results: %s" % "; ".join(results.problems))
        totals = results.totals()
        facts["tests_passed"] = totals.tests > 0 and totals.failures == 0 and totals.errors == 0
        facts["test_count"] = totals.tests
        evidence["tests"] = dict(totals.as_dict(), files=results.files, failed_cases=results.failed_cases[:10])
    if coverage:
        measured = merge_cobertura(coverage)
        if measured.problems:
            raise LedgerError("cannot read the coverage reports: %s" % "; ".join(measured.problems))
        facts["line_coverage"] = measured.percent
        evidence["coverage"] = {"line_percent": measured.percent, "files": measured.files}
    return facts, evidence


def template_fact(policy: Policy, args: Mapping[str, Any]) -> Tuple[Optional[bool], str]:
    """Whether the change fits the standard-change template it claims, and why (not)."""
    claimed = args.get("template")
    if not claimed:
        return False, "no standard-change template claimed"
    templates = {item["name"]: item for item in policy.document.get("standard_templates", [])}
    template = templates.get(claimed)
    if template is None:
        return False, "template %r is not pre-approved in policy %s (known: %s)" % (
            claimed,
            policy.name,
            ", ".join(sorted(templates)) or "none",
        )
    misfits = []
    if template.get("services") and args["service"] not in template["services"]:
        misfits.append("service %s is not one of %s" % (args["service"], ", ".join(template["services"])))
    if template.get("release_classes") and args["release_class"] not in template["release_classes"]:
        misfits.append(
            "release class %s is not one of %s" % (args["release_class"], ", ".join(template["release_classes"]))
        )
    limit = template.get("max_files_changed")
    if limit is not None and (args.get("files_changed") is None or args["files_changed"] > limit):
        misfits.append("files changed %s exceeds %d" % (args.get("files_changed"), limit))
    if template.get("allow_migrations") is False and (args.get("migrations") or args.get("irreversible_migrations")):
        misfits.append("the template allows no migrations")
    if misfits:
        return False, "template %s does not fit: %s" % (claimed, "; ".join(misfits))
    return True, "fits template %s" % claimed
