# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.cmdb_impact (documentation in plugins/modules/cmdb_impact.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import (
    ITSM_ARGUMENT_SPEC,
    ItsmActionBase,
    require_positive,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import resolve_ci_ids

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "cis": {"type": "list", "elements": "str", "required": True},
    "direction": {"type": "str", "choices": ["upstream", "downstream", "both"], "default": "upstream"},
    "depth": {"type": "int", "default": 3},
    "environment": {"type": "str"},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        require_positive("depth", args["depth"])
        with self.itsm_backend(args, write=False) as backend:
            starts = resolve_ci_ids(backend, args["cis"], args.get("environment"))
            affected, services = backend.impact(starts, args["direction"], args["depth"])
        return {
            "changed": False,
            "roots": starts,
            "affected": affected,
            "business_services": services,
            "requests_sent": self.requests_sent,
        }
