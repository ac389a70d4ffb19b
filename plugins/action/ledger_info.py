# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.ledger_info (documentation in plugins/modules/ledger_info.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.ledger.schema import latest_version

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "limit": {"type": "int", "default": 10},
    "service": {"type": "str"},
    "environment": {"type": "str"},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["limit"] < 1:
            raise LedgerError("limit %r must be at least 1; use e.g. limit: 10" % args["limit"])
        url = self.ledger_url(args)
        ledger = self.open_task_ledger_readonly(args, allow_older=True)
        if ledger is None:
            return {
                "changed": False,
                "ledger": {
                    "url": url.redacted(),
                    "dialect": url.dialect,
                    "exists": False,
                    "schema_version": None,
                    "latest_schema_version": latest_version(url.dialect),
                    "upgrade_needed": False,
                },
                "runs": [],
                "deployments": [],
                "locks": [],
            }
        with ledger:
            summary = ledger.summary(args["limit"], args.get("service"), args.get("environment"))
        return {
            "changed": False,
            "ledger": {
                "url": summary.url,
                "dialect": summary.dialect,
                "exists": True,
                "schema_version": summary.schema_version,
                "latest_schema_version": summary.latest_schema_version,
                "upgrade_needed": (summary.schema_version or 0) < summary.latest_schema_version,
            },
            "runs": summary.runs,
            "deployments": summary.deployments,
            "locks": summary.locks,
        }
