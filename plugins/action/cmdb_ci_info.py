# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.cmdb_ci_info (documentation in plugins/modules/cmdb_ci_info.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import (
    ITSM_ARGUMENT_SPEC,
    ItsmActionBase,
    require_positive,
)

# How many of a CI's changes with_changes lists, newest first.
CHANGES_SHOWN = 10

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "ci_class": {"type": "str", "default": "cmdb_ci", "aliases": ["sys_class_name"]},
    "name": {"type": "str"},
    "sys_id": {"type": "str"},
    "query": {"type": "str"},
    "limit": {"type": "int"},
    "with_relations": {"type": "bool", "default": False},
    "with_changes": {"type": "bool", "default": False},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        require_positive("limit", args.get("limit"))
        match = {k: args[k] for k in ("name", "sys_id") if args.get(k)}
        with self.itsm_backend(args, write=False) as backend:
            backend.check_ci_class(args["ci_class"])
            if args.get("query"):
                records = backend.query_cis(args["ci_class"], args["query"], args.get("limit"))
                records = [r for r in records if all(str(r.get(k)) == v for k, v in match.items())]
            else:
                records = backend.find_cis(args["ci_class"], match, limit=args.get("limit"))
            if args["with_relations"]:
                for record in records:
                    record["relations"] = backend.relations(record["sys_id"], "downstream") + backend.relations(
                        record["sys_id"], "upstream"
                    )
            if args["with_changes"]:
                for record in records:
                    changes = backend.ci_changes(record["sys_id"], CHANGES_SHOWN)
                    record["changes"] = [change["number"] for change in changes]
                    record["last_change"] = changes[0]["number"] if changes else ""
        return {"changed": False, "records": records, "requests_sent": self.requests_sent}
