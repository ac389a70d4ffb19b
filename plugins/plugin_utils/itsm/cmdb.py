# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A service's CI per environment, and the CI lookups every module shares.

ServiceNow's Common Service Data Model has one application service per
deployment of an application: "MyApp Prod" and "MyApp QA" are two CIs, each
with its own version, hosts and changes. So a deployment writes the CI
``<service> (<environment>)`` with an ``environment`` attribute, and every
module that takes a CI name and an environment reads that CI first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from .backend import ItsmBackend, Record
from .errors import ITSMError

RUNS_ON = "Runs on::Runs"


def environment_ci_name(service: str, environment: str) -> str:
    """The name of the service's CI in one environment, as a person reads it on a change or an incident."""
    return "%s (%s)" % (service, environment)


def resolve_ci(backend: ItsmBackend, item: str, environment: Optional[str] = None) -> Record:
    """The CI ``item`` names: a sys_id, else the service's CI in ``environment``, else the CI of that exact name.

    A bare service name with an environment reads the per-environment CI, so a playbook that names the
    service keeps working; without such a CI (a CMDB written before CIs were per environment) it reads
    the CI of that name.
    """
    found = backend.find_cis("cmdb_ci", {"sys_id": item}, limit=1) if len(item) == 32 else []
    if not found and environment:
        found = backend.find_cis("cmdb_ci", {"name": environment_ci_name(item, environment)}, limit=2)
    found = found or backend.find_cis("cmdb_ci", {"name": item}, limit=2)
    if len(found) != 1:
        where = " (nor %r)" % environment_ci_name(item, environment) if environment else ""
        raise ITSMError(
            "CI %r%s matches %d CIs on the %s backend; register it with relops.release.cmdb_ci, "
            "or give its sys_id or a unique name" % (item, where, len(found), backend.name)
        )
    return found[0]


def resolve_ci_ids(backend: ItsmBackend, items: Sequence[str], environment: Optional[str] = None) -> List[str]:
    """sys_ids of the CIs ``items`` name, each resolved by resolve_ci."""
    return [str(resolve_ci(backend, item, environment)["sys_id"]) for item in items]


@dataclass
class ServiceDeployment:
    """What recording a deployment did (or, in check mode, would do) to the service's CI and its hosts."""

    app: Optional[Record]
    changed: bool
    before: Record
    after: Record
    added: List[str] = field(default_factory=list)
    pruned: List[str] = field(default_factory=list)


def record_service_deployment(
    backend: ItsmBackend,
    name: str,
    environment: str,
    version: str,
    hosts: Sequence[Record],
    app_class: str,
    prune: bool,
    check_mode: bool,
) -> ServiceDeployment:
    """Set the version of the service's CI ``name`` in ``environment`` and make it run on exactly ``hosts``.

    ``Runs on`` relations to hosts not in ``hosts`` are removed when ``prune`` is set: the hosts of a
    deployment are where the service now runs, so a host that left the inventory no longer runs it.
    """
    app, changed, before, after = backend.upsert_ci(
        app_class, ["name"], {"name": name, "environment": environment, "version": version}, check_mode
    )
    wanted = {str(host["sys_id"]): host for host in hosts}
    present = {}
    if app is not None:
        present = {r["child"]: r for r in backend.relations(app["sys_id"], "downstream") if r["type"] == RUNS_ON}
    added = [sys_id for sys_id in wanted if sys_id not in present]
    pruned = [sys_id for sys_id in present if sys_id not in wanted] if prune and wanted else []
    if app is not None and not check_mode:
        for sys_id in added:
            backend.add_relation(app["sys_id"], sys_id, RUNS_ON)
        for sys_id in pruned:
            backend.remove_relation(app["sys_id"], sys_id, RUNS_ON)
    left = {str(ci["sys_id"]): str(ci.get("name") or ci["sys_id"]) for ci in backend.get_cis(pruned)} if pruned else {}
    return ServiceDeployment(
        app,
        changed or bool(added) or bool(pruned),
        before,
        after,
        [str(wanted[sys_id].get("name") or sys_id) for sys_id in added],
        [left.get(sys_id, sys_id) for sys_id in pruned],
    )
