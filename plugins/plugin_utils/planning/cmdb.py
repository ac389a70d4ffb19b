# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CIs a plan touches, resolved in the CMDB, and the CIs related to each (cmdb_impact's traversal)."""

from __future__ import annotations

from typing import Dict, List, Set

from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import environment_ci_name

from .plan import Plan, PlanError


def related_cis(plan: Plan, backend: ItsmBackend) -> Dict[str, Set[str]]:
    """Map each CI name in the plan to the names of CIs within ``plan.related_depth`` relations of it.

    A service named by a release with an environment is read as its CI in that environment (the name
    relops.release.cmdb_deployment gives it), else as the CI of that name; related CIs that are
    another release's CI are reported by the name that release uses.
    Raise PlanError naming every CI the CMDB does not know (or knows twice), with the release using it.
    """
    uses = sorted({(ci, release.environment or "") for release in plan.releases for ci in release.cis})
    if not uses:
        return {}
    lookups = sorted({name for ci, env in uses for name in ([environment_ci_name(ci, env)] if env else []) + [ci]})
    found: Dict[str, List[str]] = {}
    for ci in backend.find_cis_by_values("cmdb_ci", "name", lookups, fields=["sys_id", "name", "sys_class_name"]):
        found.setdefault(ci["name"], []).append(ci["sys_id"])

    def read(name: str, environment: str) -> str:
        per_environment = environment_ci_name(name, environment) if environment else ""
        return per_environment if found.get(per_environment) else name

    problems = []
    for index, release in enumerate(plan.releases):
        for position, name in enumerate(release.cis):
            matches = found.get(read(name, release.environment or ""), [])
            if len(matches) != 1:
                problems.append(
                    "plan.releases[%d].cis[%d]: CI %r of release %s %s in the CMDB (%s backend); %s"
                    % (
                        index,
                        position,
                        name,
                        release.id,
                        "is not" if not matches else "matches %d CIs" % len(matches),
                        backend.name,
                        "register it with relops.release.cmdb_ci or fix the name"
                        if not matches
                        else "give a unique name",
                    )
                )
    if problems:
        raise PlanError("release plan names CIs the CMDB cannot resolve:\n  " + "\n  ".join(problems))
    alias = {read(name, env): name for name, env in uses}
    related: Dict[str, Set[str]] = {name: set() for name, _env in uses}
    if plan.related_depth == 0:
        return related
    for name, env in uses:
        affected, _services = backend.impact([found[read(name, env)][0]], "both", plan.related_depth)
        related[name] |= {alias.get(str(ci["name"]), str(ci["name"])) for ci in affected if ci.get("name")}
    return related
