# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.deployment_record (documentation in plugins/modules/deployment_record.py)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "state": {"type": "str", "default": "started", "choices": ["started", "finished", "query"]},
    "service": {"type": "str"},
    "environment": {"type": "str"},
    "version": {"type": "str"},
    "strategy": {"type": "str"},
    "artifact_digest": {"type": "str"},
    "change_id": {"type": "str"},
    "details": {"type": "dict", "default": {}},
    "deployment_id": {"type": "int"},
    "status": {"type": "str", "choices": ["successful", "failed", "rolled_back"]},
    "exclude_version": {"type": "str"},
    "limit": {"type": "int", "default": 50},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["state"] == "query":
            return self._query(args)
        if args["state"] == "finished":
            return self._finish(args)
        return self._start(args)

    def _start(self, args: Dict[str, Any]) -> Dict[str, Any]:
        missing = [name for name in ("service", "environment", "version") if not args.get(name)]
        if missing:
            raise LedgerError("state=started needs %s; name what is being deployed where" % ", ".join(missing))
        if self.check_mode:
            return {"changed": True, "deployment_id": None}
        with self.open_task_ledger(args) as ledger:
            deployment_id = ledger.record_deployment(
                self.actor,
                args["service"],
                args["version"],
                args["environment"],
                "in_progress",
                strategy=args.get("strategy"),
                artifact_digest=args.get("artifact_digest"),
                change_id=args.get("change_id"),
                details=args["details"],
            )
        self.audit("deployment_started", deployment_id=deployment_id, service=args["service"], version=args["version"])
        return {"changed": True, "deployment_id": deployment_id}

    def _finish(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if not args.get("status"):
            raise LedgerError("state=finished needs a status: successful, failed or rolled_back")
        if args.get("deployment_id") is None:
            if self.check_mode:
                return {"changed": True, "deployment_id": None}
            raise LedgerError("state=finished needs the deployment_id that state=started returned")
        if self.check_mode:
            return {"changed": True, "deployment_id": args["deployment_id"]}
        with self.open_task_ledger(args) as ledger:
            ledger.finish_deployment(args["deployment_id"], args["status"])
        self.audit("deployment_finished", deployment_id=args["deployment_id"], status=args["status"])
        return {"changed": True, "deployment_id": args["deployment_id"], "status": args["status"]}

    def _query(self, args: Dict[str, Any]) -> Dict[str, Any]:
        deployments: List[Dict[str, Any]] = []
        ledger = self.open_task_ledger_readonly(args)
        if ledger is not None:
            with ledger:
                deployments = ledger.list_deployments(args.get("service"), args.get("environment"), args["limit"])
        return {
            "changed": False,
            "deployments": deployments,
            "last_successful": _last_successful(deployments, None),
            "rollback_target": _last_successful(deployments, args.get("exclude_version")),
        }


def _last_successful(deployments: List[Dict[str, Any]], exclude_version: Optional[str]) -> Optional[Dict[str, Any]]:
    """The newest successful deployment of another version: a failed or rolled-back one never qualifies,
    nor one without an artifact digest (a CMDB-only record names no package to go back to)."""
    for deployment in deployments:
        if (
            deployment["status"] == "successful"
            and deployment["version"] != exclude_version
            and deployment.get("artifact_digest")
        ):
            return deployment
    return None
