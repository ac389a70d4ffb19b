# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.cmdb_deployment (documentation in plugins/modules/cmdb_deployment.py)."""

from __future__ import annotations

from typing import Any, Dict, List

from ansible_collections.relops.release.plugins.module_utils.timestamps import now_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend, Record
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import (
    environment_ci_name,
    record_service_deployment,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "version": {"type": "str", "required": True},
    "environment": {"type": "str", "required": True},
    "hosts": {"type": "list", "elements": "str", "default": []},
    "ci_name": {"type": "str"},
    "prune_hosts": {"type": "bool", "default": True},
    "change": {"type": "str"},
    "artifact_digest": {"type": "str"},
    "deployed_at": {"type": "str"},
    "status": {"type": "str", "choices": ["successful", "failed", "rolled_back"], "default": "successful"},
    "app_class": {"type": "str", "default": "cmdb_ci_appl"},
    "host_class": {"type": "str", "default": "cmdb_ci_server"},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        with self.itsm_backend(args, write=True) as backend:
            change = backend.require_change(number=args["change"]) if args.get("change") else None
            hosts = [self._host(backend, args, name) for name in args["hosts"]]
            # Only a successful deployment says where the service now runs; a failed one leaves the hosts as they were.
            deployed = record_service_deployment(
                backend,
                args.get("ci_name") or environment_ci_name(args["service"], args["environment"]),
                args["environment"],
                args["version"],
                hosts,
                args["app_class"],
                prune=args["prune_hosts"] and args["status"] == "successful",
                check_mode=self.check_mode,
            )
            app = deployed.app
            change_changed = False
            if change is not None and app is not None:
                change_changed = self._attach(backend, change, app, hosts)
            elif change is not None:
                change_changed = True
        recorded = self._record(args, app, hosts)
        result: Dict[str, Any] = {
            "changed": deployed.changed or change_changed or recorded is not None,
            "app": app or deployed.after,
            "hosts": [h["sys_id"] for h in hosts],
            "hosts_added": deployed.added,
            "hosts_pruned": deployed.pruned,
            "deployment_id": recorded,
            "last_change": args.get("change") or "",
            "requests_sent": self.requests_sent,
        }
        if self.diff_mode:
            before, after = dict(deployed.before), dict(deployed.after)
            if deployed.pruned:
                before["runs_on_removed"] = deployed.pruned
            if deployed.added:
                after["runs_on_added"] = deployed.added
            result["diff"] = {"before": before, "after": after}
        return result

    def _attach(self, backend: ItsmBackend, change: Record, app: Record, hosts: List[Record]) -> bool:
        """Record the change on the CIs it deployed to, as ServiceNow does: the application CI becomes the
        change's configuration item (``cmdb_ci``) unless it has one, and the application and its hosts
        become its affected CIs (``task_ci``), through which each CI's last change is read."""
        present = backend.change_cis(change)
        missing = [ci["sys_id"] for ci in [app, *hosts] if ci["sys_id"] not in present]
        primary = not change.get("cmdb_ci")
        if self.check_mode:
            return bool(missing) or primary
        if primary:
            change = backend.write_change(change, {"cmdb_ci": app["sys_id"]})
        if missing:
            backend.add_change_cis(change, missing)
        return bool(missing) or primary

    def _host(self, backend: ItsmBackend, args: Dict[str, Any], name: str) -> Record:
        found = backend.find_cis(args["host_class"], {"name": name}, limit=2)
        if len(found) != 1:
            raise ITSMError(
                "host %r matches %d CIs of class %s; register it with relops.release.cmdb_ci first, or fix host_class"
                % (name, len(found), args["host_class"])
            )
        return found[0]

    def _record(self, args: Dict[str, Any], app: Any, hosts: List[Record]) -> Any:
        """Write the deployment to the ledger once: a rerun with the same service, version and change is a no-op."""
        if self.check_mode:
            ledger = self.open_task_ledger_readonly(args)
            if ledger is None:
                return -1
            with ledger:
                return None if self._already(ledger, args) else -1
        with self.open_task_ledger(args) as ledger:
            if self._already(ledger, args):
                return None
            return ledger.record_deployment(
                self.actor,
                args["service"],
                args["version"],
                args["environment"],
                args["status"],
                change_id=args.get("change"),
                artifact_digest=(args.get("artifact_digest") or "").lower() or None,
                started_at=args.get("deployed_at") or now_timestamp(),
                details={"app_ci": app["sys_id"] if app else None, "hosts": [h["sys_id"] for h in hosts]},
            )

    def _already(self, ledger: Any, args: Dict[str, Any]) -> bool:
        for row in ledger.list_deployments(args["service"], args["environment"], limit=50):
            if (
                row["version"] == args["version"]
                and row["change_id"] == args.get("change")
                and row["status"] == args["status"]
            ):
                return True
        return False
