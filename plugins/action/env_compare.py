# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.env_compare (documentation in plugins/modules/env_compare.py)."""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Dict, List, Mapping, Optional, Set

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError

DEFAULT_FACTS = ["distribution", "distribution_version", "kernel", "architecture", "python_version"]
MISSING = "(missing)"

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "left": {"type": "str", "required": True},
    "right": {"type": "str", "required": True},
    "facts": {"type": "list", "elements": "str", "default": DEFAULT_FACTS},
    "config": {"type": "list", "elements": "str", "default": []},
    "allow": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "path": {"type": "str", "required": True},
            "reason": {"type": "str", "required": True},
            "left": {"type": "raw"},
            "right": {"type": "raw"},
        },
    },
    "fail_on_deviation": {"type": "bool", "default": False},
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        _check_allowances(args["allow"])
        left_hosts = self._hosts(args["left"], "left")
        right_hosts = self._hosts(args["right"], "right")
        left = self._collect(left_hosts, args)
        right = self._collect(right_hosts, args)
        deviations, accepted, used = compare(left, right, args["allow"])
        stale = [entry for index, entry in enumerate(args["allow"]) if index not in used]
        result: Dict[str, Any] = {
            "changed": False,
            "left": {"name": args["left"], "hosts": left_hosts},
            "right": {"name": args["right"], "hosts": right_hosts},
            "compared": len(set(left) | set(right)),
            "deviations": deviations,
            "accepted": accepted,
            "stale_allowances": stale,
            "report": {
                "before": "".join("%s: %s\n" % (item["path"], _show(item["left"])) for item in deviations),
                "after": "".join("%s: %s\n" % (item["path"], _show(item["right"])) for item in deviations),
                "before_header": args["left"],
                "after_header": args["right"],
            },
        }
        self.audit(
            "env_compare", left=args["left"], right=args["right"], deviations=len(deviations), accepted=len(accepted)
        )
        if args["fail_on_deviation"] and deviations:
            result["failed"] = True
            result["msg"] = "%d deviation(s) between %s and %s are not in the allow-list: %s" % (
                len(deviations),
                args["left"],
                args["right"],
                "; ".join(
                    "%s (%s vs %s)" % (item["path"], _show(item["left"]), _show(item["right"]))
                    for item in deviations[:10]
                ),
            )
        return result

    def _hosts(self, name: str, side: str) -> List[str]:
        """A group's hosts, or the one host of that name."""
        groups: Mapping[str, List[str]] = self.task_var("groups", {})
        # hostvars templates each value as it is read (ansible-core's HostVarsVars), so it is read as is.
        hostvars = self.task_vars.get("hostvars", {})
        if name in groups and name not in ("all", "ungrouped"):
            hosts = list(groups[name])
            if hosts:
                return hosts
            raise LedgerError("%s group %r has no hosts; name a group with hosts or a host" % (side, name))
        if name in hostvars:
            return [name]
        raise LedgerError("%s %r is neither a group nor a host of the inventory; check the name" % (side, name))

    def _collect(self, hosts: List[str], args: Dict[str, Any]) -> Dict[str, List[Any]]:
        """Each compared path's distinct values across the hosts (one value when they agree)."""
        values: Dict[str, List[Any]] = {}
        hostvars = self.task_vars["hostvars"]
        for host in hosts:
            variables = hostvars[host]
            facts = _plain(variables.get("ansible_facts", {}))
            if args["facts"] and not facts:
                raise LedgerError(
                    "host %s has no gathered facts; gather facts on both environments first"
                    " (gather_facts: true or ansible.builtin.setup)" % host
                )
            flat: Dict[str, Any] = {}
            for path in args["facts"]:
                flat.update(flatten("facts." + path, lookup(facts, path)))
            for path in args["config"]:
                head = path.split(".", 1)[0]
                root = {head: _plain(variables[head])} if head in variables else {}
                flat.update(flatten("config." + path, lookup(root, path)))
            for path, value in flat.items():
                bucket = values.setdefault(path, [])
                if value not in bucket:
                    bucket.append(value)
        return values


def lookup(document: Any, path: str) -> Any:
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return MISSING
    return current


def flatten(prefix: str, value: Any) -> Dict[str, Any]:
    """Nested mappings become one entry per leaf, so a deviation names the exact key."""
    if isinstance(value, Mapping) and value:
        flat: Dict[str, Any] = {}
        for key in sorted(value):
            flat.update(flatten("%s.%s" % (prefix, key), value[key]))
        return flat
    return {prefix: value}


def compare(
    left: Dict[str, List[Any]], right: Dict[str, List[Any]], allow: List[Dict[str, Any]]
) -> "tuple[List[Dict[str, Any]], List[Dict[str, Any]], Set[int]]":
    deviations: List[Dict[str, Any]] = []
    accepted: List[Dict[str, Any]] = []
    used: Set[int] = set()
    for path in sorted(set(left) | set(right)):
        left_value = _single(left.get(path, [MISSING]))
        right_value = _single(right.get(path, [MISSING]))
        if left_value == right_value:
            continue
        item = {"path": path, "left": left_value, "right": right_value}
        index = _allowance(path, left_value, right_value, allow)
        if index is None:
            deviations.append(item)
        else:
            used.add(index)
            accepted.append(dict(item, reason=allow[index]["reason"]))
    return deviations, accepted, used


def _allowance(path: str, left: Any, right: Any, allow: List[Dict[str, Any]]) -> Optional[int]:
    for index, entry in enumerate(allow):
        if not fnmatch.fnmatchcase(path, entry["path"]):
            continue
        if entry.get("left") is not None and entry["left"] != left:
            continue
        if entry.get("right") is not None and entry["right"] != right:
            continue
        return index
    return None


def _single(values: List[Any]) -> Any:
    # Hosts of one environment that disagree among themselves show all their values.
    return values[0] if len(values) == 1 else {"differs_within": values}


def _check_allowances(allow: List[Dict[str, Any]]) -> None:
    for entry in allow:
        if not str(entry["reason"]).strip():
            raise LedgerError(
                "allow-list entry for %r has an empty reason; say why the deviation is accepted" % entry["path"]
            )
        if not entry["path"].startswith(("facts.", "config.", "*")):
            raise LedgerError(
                "allow-list path %r names neither facts nor config; start it with 'facts.' or 'config.'" % entry["path"]
            )


def _plain(value: Any) -> Any:
    """Host variables as plain JSON data (drops Ansible's tagged wrappers)."""
    return json.loads(json.dumps(value, default=str))


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
