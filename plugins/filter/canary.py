# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters relops.release.canary_layout, canary_servers and canary_steps (docs in the .yml files beside),
used by the relops.release.canary role."""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from ansible.errors import AnsibleFilterError

from ansible_collections.relops.release.plugins.plugin_utils import canary_plan


def canary_layout(
    servers: Any, slots: Any, version: Any, names: Any, addresses: Any, host: Any = "", aborting: Any = False
) -> Dict[str, Any]:
    try:
        return canary_plan.canary_layout(
            servers or [], slots or {}, str(version), names, addresses, str(host), bool(aborting)
        )
    except (canary_plan.CanaryPlanError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("canary_layout: %s" % exc) from None


def canary_servers(layouts: Any, weight: Any, total: Any = 100) -> List[Dict[str, Any]]:
    try:
        return canary_plan.canary_servers(list(layouts), int(weight), int(total))
    except (canary_plan.CanaryPlanError, KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("canary_servers: %s" % exc) from None


def canary_steps(steps: Any) -> List[int]:
    try:
        return canary_plan.check_steps(list(steps) if isinstance(steps, (list, tuple)) else [steps])
    except canary_plan.CanaryPlanError as exc:
        raise AnsibleFilterError("canary_steps: %s" % exc) from None


class FilterModule:
    def filters(self) -> Dict[str, Callable[..., Any]]:
        return {"canary_layout": canary_layout, "canary_servers": canary_servers, "canary_steps": canary_steps}
