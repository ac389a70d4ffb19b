# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.cmdb_ci (documentation in plugins/modules/cmdb_ci.py)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend, Record, as_text
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow_backend import ServiceNowBackend

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "ci_class": {"type": "str", "default": "cmdb_ci", "aliases": ["sys_class_name"]},
    "name": {"type": "str"},
    "attributes": {"type": "dict", "default": {}},
    "identity": {"type": "list", "elements": "str", "default": ["name"]},
    "items": {"type": "list", "elements": "dict"},
    "relations": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "type": {"type": "str", "required": True},
            "target": {"type": "str", "required": True},
            "target_class": {"type": "str", "default": "cmdb_ci"},
            "direction": {"type": "str", "choices": ["parent", "child"], "default": "parent"},
        },
    },
    "use_ire": {"type": "bool", "default": False},
    "data_source": {"type": "str", "default": "ServiceNow"},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        with self.itsm_backend(args, write=True) as backend:
            result = self._upsert_many(backend, args) if args.get("items") else self._upsert_one(backend, args)
        result["requests_sent"] = self.requests_sent
        return result

    def _upsert_one(self, backend: ItsmBackend, args: Dict[str, Any]) -> Dict[str, Any]:
        values = dict(args["attributes"])
        if args.get("name"):
            values["name"] = args["name"]
        ci_class = args["ci_class"]
        if args["use_ire"] and not isinstance(backend, ServiceNowBackend):
            raise ITSMError(
                "use_ire needs backend servicenow; the local backend identifies CIs by the identity columns"
            )
        # One lookup decides both what check mode reports and what is written.
        plan = backend.plan_ci_upsert(ci_class, args["identity"], values)
        ci, changed, before, after = plan.outcome()
        operation = "NO_CHANGE" if not changed else ("INSERT" if ci is None else "UPDATE")
        if changed and not self.check_mode:
            if args["use_ire"] and isinstance(backend, ServiceNowBackend):
                item = backend.identify_reconcile(ci_class, values, args["data_source"])
                operation = str(item.get("operation", operation))
                ci = backend.get_cis([str(item["sysId"])])[0]
            else:
                ci, changed, before, after = backend.apply_ci_upsert(plan)
        relations_changed, relations = self._relate(backend, ci, args["relations"])
        result: Dict[str, Any] = {
            "changed": changed or relations_changed,
            "ci": ci or dict(after),
            "operation": operation,
            "relations": relations,
        }
        if self.diff_mode:
            result["diff"] = {"before": before, "after": after}
        return result

    def _upsert_many(self, backend: ItsmBackend, args: Dict[str, Any]) -> Dict[str, Any]:
        if len(args["identity"]) != 1:
            raise ITSMError(
                "items needs exactly one identity column (e.g. identity: [name]); got %s" % args["identity"]
            )
        outcomes = backend.upsert_many(args["ci_class"], args["identity"][0], args["items"], self.check_mode)
        cis = [ci or after for ci, _changed, _before, after in outcomes]
        changed = [bool(c) for _ci, c, _b, _a in outcomes]
        result: Dict[str, Any] = {"changed": any(changed), "cis": cis, "changed_count": sum(changed)}
        if self.diff_mode:
            result["diff"] = [{"before": b, "after": a} for _ci, c, b, a in outcomes if c]
        return result

    def _relate(
        self, backend: ItsmBackend, ci: Optional[Record], wanted: List[Dict[str, Any]]
    ) -> "tuple[bool, List[Record]]":
        if not wanted:
            return False, []
        known = backend.relation_types()
        changed = False
        done: List[Record] = []
        for relation in wanted:
            if relation["type"] not in known:
                raise ITSMError("relation type %r is unknown; use one of %s" % (relation["type"], ", ".join(known)))
            target = _find_target(backend, relation)
            if ci is None:
                changed = True
                done.append({"type": relation["type"], "target": target["sys_id"], "direction": relation["direction"]})
                continue
            parent, child = (
                (ci["sys_id"], target["sys_id"])
                if relation["direction"] == "parent"
                else (target["sys_id"], ci["sys_id"])
            )
            existing = [
                r
                for r in backend.relations(parent, "downstream")
                if r["child"] == child and r["type"] == relation["type"]
            ]
            if not existing:
                changed = True
                if not self.check_mode:
                    backend.add_relation(parent, child, relation["type"])
            done.append({"parent": parent, "child": child, "type": relation["type"]})
        return changed, done


def _find_target(backend: ItsmBackend, relation: Dict[str, Any]) -> Record:
    target = as_text(relation["target"])
    found = backend.find_cis(relation["target_class"], {"sys_id": target}, limit=1) if len(target) == 32 else []
    found = found or backend.find_cis(relation["target_class"], {"name": target}, limit=2)
    if len(found) != 1:
        raise ITSMError(
            "relation target %r matches %d CIs of class %s; create it first with relops.release.cmdb_ci, "
            "or give its sys_id" % (target, len(found), relation["target_class"])
        )
    return found[0]
