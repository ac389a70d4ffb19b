# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a canary stands on one host, read from the router and the slots, never guessed.

Each host has two slots (blue, green), each behind its own router server. The
stable slot is the one taking traffic; the canary slot is the one holding the
version being rolled out (or, before it is installed, the idle one). The
canary's current weight on the router says which steps are done, so a rerun
resumes where the last run stopped and a finished promotion is a no-op.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

SLOTS = ("blue", "green")


class CanaryPlanError(ValueError):
    """The router and the slots disagree with any canary state; the message says what to do."""


def canary_layout(
    servers: Sequence[Mapping[str, Any]],
    slots: Mapping[str, Optional[Mapping[str, Any]]],
    version: str,
    names: Mapping[str, str],
    addresses: Mapping[str, str],
    host: str = "",
    aborting: bool = False,
) -> Dict[str, Any]:
    """The host's stable and canary slots, the canary's current weight, and whether it is promoted already.

    ``servers`` is the router's server list, ``slots`` what each slot holds (slot_install's ``slot``),
    ``names`` and ``addresses`` each slot's router server name and host:port. ``aborting`` accepts a
    stable slot that takes no traffic, which is what an abort repairs.
    """
    by_name = {str(server["name"]): server for server in servers}
    where = " on %s" % host if host else ""
    for slot in SLOTS:
        if names[slot] not in by_name:
            raise CanaryPlanError(
                "the router has no server %r for the %s slot%s; add it to the upstream or backend (it lists %s)"
                % (names[slot], slot, where, ", ".join(sorted(by_name)) or "none")
            )
    live = [slot for slot in SLOTS if _takes_traffic(by_name[names[slot]])]
    holding = [slot for slot in SLOTS if _version(slots.get(slot)) == version]
    if len(live) == 1 and live[0] in holding:
        # The version already serves alone: promoted (or promoted up to stopping the old slot).
        canary = live[0]
        return _layout(canary, _other(canary), 0, True, True, by_name, names, addresses)
    if len(holding) == 2:
        raise CanaryPlanError(
            "both slots%s hold %s and %s; abort the canary (tasks_from: abort) to get back to one stable slot"
            % (where, version, "neither takes traffic" if not live else "both take traffic")
        )
    if holding:
        canary = holding[0]
    elif len(live) == 1:
        canary = _other(live[0])
    elif not live:
        raise CanaryPlanError(
            "no slot%s takes traffic, so there is no stable version to compare the canary with; "
            "deploy the first release with relops.release.blue_green" % where
        )
    else:
        raise CanaryPlanError(
            "both slots%s take traffic and neither holds %s: another canary (%s) is under way; "
            "promote it or abort it first"
            % (where, version, " / ".join("%s %s" % (slot, _version(slots.get(slot))) for slot in SLOTS))
        )
    stable = _other(canary)
    if stable not in live and not aborting:
        raise CanaryPlanError(
            "the stable slot %s%s takes no traffic while the canary slot %s holds %s; "
            "abort the canary (tasks_from: abort) to restore the stable version" % (stable, where, canary, version)
        )
    server = by_name[names[canary]]
    weight = int(server.get("weight") or 0) if _takes_traffic(server) else 0
    return _layout(canary, stable, weight, False, bool(holding), by_name, names, addresses)


def _layout(
    canary: str,
    stable: str,
    weight: int,
    promoted: bool,
    installed: bool,
    by_name: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    addresses: Mapping[str, str],
) -> Dict[str, Any]:
    return {
        "canary": canary,
        "stable": stable,
        "weight": weight,
        "promoted": promoted,
        "installed": installed,
        "servers": {slot: {"name": names[slot], "address": addresses[slot]} for slot in SLOTS},
        "router": {slot: dict(by_name[names[slot]]) for slot in SLOTS},
    }


def _takes_traffic(server: Mapping[str, Any]) -> bool:
    return server.get("state") == "ready" and int(server.get("weight") or 0) > 0


def _version(slot: Optional[Mapping[str, Any]]) -> Optional[str]:
    return str(slot["version"]) if slot and slot.get("version") is not None else None


def _other(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


def canary_servers(layouts: Sequence[Mapping[str, Any]], weight: int, total: int = 100) -> List[Dict[str, Any]]:
    """The router servers for every host at ``weight`` percent on the canary: the canary slot gets
    ``weight`` and the stable slot the rest, out of ``total``; a slot at 0 is in maintenance."""
    if not 0 <= weight <= 100:
        raise CanaryPlanError("canary weight %r is not a percentage from 0 to 100" % weight)
    canary_weight = round(total * weight / 100)
    servers = []
    for layout in layouts:
        for slot, share in ((layout["stable"], total - canary_weight), (layout["canary"], canary_weight)):
            server = layout["servers"][slot]
            servers.append(
                {
                    "name": server["name"],
                    "address": server["address"],
                    "weight": share,
                    "state": "ready" if share > 0 else "maint",
                }
            )
    return servers


def check_steps(steps: Sequence[Any]) -> List[int]:
    """Steps as rising whole percentages from 1 to 100."""
    try:
        numbers = [int(step) for step in steps]
    except (TypeError, ValueError):
        raise CanaryPlanError("canary_steps %r must be whole percentages, e.g. [5, 25, 50, 100]" % (steps,)) from None
    if not numbers or any(not 0 < step <= 100 for step in numbers):
        raise CanaryPlanError("canary_steps %r must be percentages from 1 to 100, e.g. [5, 25, 50, 100]" % (steps,))
    if numbers != sorted(set(numbers)):
        raise CanaryPlanError("canary_steps %r must rise step by step without repeats" % (steps,))
    return numbers
