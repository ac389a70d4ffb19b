# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.risk_assess (documentation in plugins/modules/risk_assess.py)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.plugin_utils.governance.facts import (
    ci_facts,
    ledger_facts,
    template_fact,
    test_facts,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.policy import assess, load_policy
from ansible_collections.relops.release.plugins.plugin_utils.quality import RELEASE_CLASSES
from ansible_collections.relops.release.plugins.plugin_utils.release_record import (
    ReleaseRecordError,
    ReleaseRecordStore,
    risk_evidence,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "environment": {"type": "str", "default": "production"},
    "release_class": {"type": "str", "required": True, "choices": list(RELEASE_CLASSES)},
    "cis": {"type": "list", "elements": "str", "default": []},
    "impact_depth": {"type": "int", "default": 3},
    "junit": {"type": "list", "elements": "path", "default": []},
    "coverage": {"type": "list", "elements": "path", "default": []},
    "files_changed": {"type": "int"},
    "migrations": {"type": "int", "default": 0},
    "irreversible_migrations": {"type": "int", "default": 0},
    "template": {"type": "str"},
    "policy": {"type": "path"},
    "release_id": {"type": "str"},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        for name in ("files_changed", "migrations", "irreversible_migrations"):
            if args.get(name) is not None and args[name] < 0:
                raise LedgerError("%s %r must not be negative" % (name, args[name]))
        if args["irreversible_migrations"] > args["migrations"]:
            raise LedgerError(
                "irreversible_migrations (%d) cannot exceed migrations (%d); count every migration in migrations"
                % (args["irreversible_migrations"], args["migrations"])
            )
        policy = load_policy(self.optional_local_path(args.get("policy")))
        facts: Dict[str, Any] = {
            "release_class": args["release_class"],
            "files_changed": args.get("files_changed"),
            "migrations": args["migrations"],
            "irreversible_migrations": args["irreversible_migrations"],
            "ci_criticality": None,
            "blast_radius": None,
            "business_services": None,
        }
        evidence: Dict[str, Any] = {}
        if args["cis"]:
            with self.itsm_backend(args, write=False) as backend:
                found, evidence["cmdb"] = ci_facts(backend, args["cis"], args["impact_depth"], args["environment"])
            facts.update(found)
        with self._ledger(args) as ledger:
            found, evidence["ledger"] = ledger_facts(
                ledger, args["service"], args["environment"], int(policy.gate["change_failure_window"])
            )
        facts.update(found)
        found, evidence["tests"] = test_facts(self.local_paths(args["junit"]), self.local_paths(args["coverage"]))
        facts.update(found)
        if args.get("release_id"):
            evidence["quality"] = self._recorded_quality(args)
            if evidence["quality"] is not None and evidence["quality"].get("decision") == "deny":
                # A quality gate that denied this artifact outweighs whatever reports were given here.
                facts["tests_passed"] = False
        facts["template_match"], template_detail = template_fact(policy, args)
        outcome = assess(policy, facts)
        result: Dict[str, Any] = {
            "changed": False,
            **outcome.as_dict(),
            "facts": facts,
            "evidence": evidence,
            "template": {"name": args.get("template"), "match": facts["template_match"], "detail": template_detail},
            "policy": policy.describe(),
            "policy_version": policy.identity,
            "msg": "%s risk (score %g), %s change, %s approval"
            % (outcome.risk, outcome.score, outcome.change_type, outcome.route),
        }
        if args.get("release_id"):
            result["recorded"] = self._record(args, result)
        return result

    def _recorded_quality(self, args: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """The quality decision recorded for this release's artifact, in its record or an earlier attempt's."""
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            return None
        with ledger:
            store = ReleaseRecordStore(ledger)
            record = store.get_record(args["release_id"])
            if record is None:
                return None
            if "quality" in record["stages"]:
                return dict(record["stages"]["quality"])
            earlier = store.latest_stage(record["service"], record["environment"], record["digest"], "quality")
        return None if earlier is None else dict(earlier["data"])

    def _record(self, args: Dict[str, Any], result: Dict[str, Any]) -> bool:
        """Write the assessment into the release's record, where the gate reads it (not from its caller)."""
        if self.check_mode:
            return False
        with self.open_task_ledger(args) as ledger:
            store = ReleaseRecordStore(ledger)
            record = store.get_record(args["release_id"])
            if record is None or (record["service"], record["environment"]) != (args["service"], args["environment"]):
                raise ReleaseRecordError(
                    "release %s has no record for %s in %s; give the release_id artifact_verify returned"
                    % (args["release_id"], args["service"], args["environment"])
                )
            store.record_stage(
                self.actor, args["release_id"], "risk", dict(risk_evidence(result), facts=result["facts"])
            )
        self.audit("release_record", release_id=args["release_id"], stage="risk")
        return True

    def _ledger(self, args: Dict[str, Any]) -> Any:
        return _Optional(self.open_task_ledger_readonly(args))


class _Optional:
    """A readonly ledger (or None when none exists yet) as a context manager."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    def __enter__(self) -> Any:
        return self.ledger

    def __exit__(self, *exc_info: object) -> None:
        if self.ledger is not None:
            self.ledger.close()
