# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CIs a plan touches, resolved in the CMDB, and the CIs related to each (cmdb_impact's traversal)."""

from __future__ import annotations

from typing import Dict, List, Set

from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend

from .plan import Plan, PlanError


def related_cis(plan: Plan, backend: ItsmBackend) -> Dict[str, Set[str]]:
    """Map each CI name in the plan to the names of CIs within ``plan.related_depth`` relations of it.

    Raise PlanError naming every CI the CMDB does not know (or knows twice), with the release using it.
    """
    names = sorted({ci for release in plan.releases for ci in release.cis})
    if not names:
        return {}
    found: Dict[str, List[str]] = {}
    for ci in backend.find_cis_by_values("cmdb_ci", "name", names, fields=["sys_id", "name", "sys_class_name"]):
        found.setdefault(ci["name"], []).append(ci["sys_id"])
    problems = []
    for index, release in enumerate(plan.releases):
        for position, name in enumerate(release.cis):
            matches = found.get(name, [])
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
    related: Dict[str, Set[str]] = {}
    for name in names:
        if plan.related_depth == 0:
            related[name] = set()
            continue
        affected, _services = backend.impact([found[name][0]], "both", plan.related_depth)
        related[name] = {ci["name"] for ci in affected if ci.get("name")}
    return related
