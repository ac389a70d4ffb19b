# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.change_request_info (documentation in plugins/modules/change_request_info.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.itsm import model
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import (
    ITSM_ARGUMENT_SPEC,
    ItsmActionBase,
    public_change,
    require_positive,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "number": {"type": "str"},
    "correlation_id": {"type": "str"},
    "state": {"type": "str", "choices": list(model.STATE_VALUES)},
    "query": {"type": "str"},
    "limit": {"type": "int", "default": 100},
    "with_approvals": {"type": "bool", "default": False},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        require_positive("limit", args["limit"])
        filters = {k: args[k] for k in ("number", "correlation_id", "state") if args.get(k)}
        with self.itsm_backend(args, write=False) as backend:
            changes = backend.list_changes(filters, args.get("query"), args["limit"])
            records = []
            for change in changes:
                record = public_change(change)
                record["configuration_items"] = backend.change_cis(change)
                record["next_states"] = backend.next_states(change)
                if args["with_approvals"]:
                    record["approvals"] = backend.approvals(change)
                records.append(record)
        return {"changed": False, "records": records, "requests_sent": self.requests_sent}
