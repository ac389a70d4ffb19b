# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.feature_flag (documentation in plugins/modules/feature_flag.py)."""

from __future__ import annotations

import copy
from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.flags.flagd import (
    FlagError,
    build_flag,
    read_document,
    render_document,
    validate_document,
)
from ansible_collections.relops.release.plugins.plugin_utils.flags.gate import require_allow
from ansible_collections.relops.release.plugins.plugin_utils.flags.unleash import (
    UnleashClient,
    UnleashTarget,
    plan_changes,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.planning.files import write_if_changed

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "backend": {"type": "str", "choices": ["flagd", "unleash"], "default": "flagd"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "enabled": {"type": "bool", "default": True},
    "percentage": {"type": "int"},
    "path": {"type": "path"},
    "variants": {"type": "dict"},
    "default_variant": {"type": "str"},
    "rollout": {"type": "list", "elements": "dict"},
    "bucket_by": {"type": "str", "default": "targetingKey"},
    "targeting": {"type": "dict"},
    "metadata": {"type": "dict"},
    "flagd_schema": {"type": "path"},
    "unleash_url": {"type": "str"},
    "unleash_token": {"type": "str", "no_log": True},
    "project": {"type": "str", "default": "default"},
    "environment": {"type": "str"},
    "stickiness": {"type": "str", "default": "default"},
    "flag_type": {"type": "str", "default": "release"},
    "description": {"type": "str", "default": ""},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": 10.0},
    "gate": {"type": "dict"},
    "require_gate": {"type": "bool", "default": True},
    "gate_max_age": {"type": "int", "default": 3600},
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            if args["backend"] == "unleash":
                return self._unleash(args)
            return self._flagd(args)
        except FlagError as exc:
            raise LedgerError(str(exc)) from None

    def _gate(self, args: Dict[str, Any], what: str) -> None:
        # Check mode asks what would change; only a real write needs the gate's permission.
        if not self.check_mode:
            require_allow(args.get("gate"), args["require_gate"], args["gate_max_age"], what)

    def _flagd(self, args: Dict[str, Any]) -> Dict[str, Any]:
        args = self.with_local_paths(args, ("path", "flagd_schema")) or args
        path = args.get("path")
        if not path:
            raise FlagError("backend flagd needs path, the flag file flagd reads (or an HTTP server serves)")
        document, before_text = read_document(path)
        validate_document(document, path, args.get("flagd_schema"))
        desired = copy.deepcopy(document)
        if args["state"] == "present":
            desired["flags"][args["name"]] = build_flag(
                enabled=args["enabled"],
                variants=args.get("variants"),
                default_variant=args.get("default_variant"),
                rollout=args.get("rollout"),
                percentage=args.get("percentage"),
                targeting=args.get("targeting"),
                bucket_by=args["bucket_by"],
                metadata=args.get("metadata"),
            )
        else:
            desired["flags"].pop(args["name"], None)
        validate_document(desired, "%s (after setting flag %s)" % (path, args["name"]), args.get("flagd_schema"))
        after_text = render_document(desired)
        changed = document != desired or (before_text is None and args["state"] == "present")
        if changed:
            self._gate(args, "flag %s in %s" % (args["name"], path))
            write_if_changed(path, after_text.encode("utf-8"), self.check_mode)
            self.audit(
                "feature_flag",
                backend="flagd",
                path=path,
                flag=args["name"],
                state=args["state"],
                definition=desired["flags"].get(args["name"]),
                gate=_gate_summary(args.get("gate")),
            )
        return {
            "changed": changed,
            "flag": desired["flags"].get(args["name"]),
            "diff": {
                "before_header": path,
                "after_header": path,
                "before": render_document(document) if before_text is not None else "",
                "after": after_text,
            },
        }

    def _unleash(self, args: Dict[str, Any]) -> Dict[str, Any]:
        missing = [option for option in ("unleash_url", "unleash_token", "environment") if not args.get(option)]
        if missing:
            raise FlagError("backend unleash needs %s" % ", ".join(missing))
        percentage = args.get("percentage")
        if percentage is not None and not 0 <= percentage <= 100:
            raise FlagError("percentage %r must be between 0 and 100" % percentage)
        target = UnleashTarget(
            url=args["unleash_url"],
            token=args["unleash_token"],
            project=args["project"],
            feature=args["name"],
            environment=args["environment"],
            validate_certs=args["validate_certs"],
            timeout=args["timeout"],
        )
        client = UnleashClient(target)
        try:
            current = client.read()
            present = args["state"] == "present"
            steps = plan_changes(current, present, args["enabled"], percentage, args["stickiness"])
            if steps:
                self._gate(args, "flag %s in Unleash %s/%s" % (args["name"], args["project"], args["environment"]))
            if steps and not self.check_mode:
                self._apply(client, steps, args, percentage)
            after = (
                {"exists": False, "enabled": False, "rollout": None, "stickiness": None}
                if not present
                else {
                    "exists": True,
                    "enabled": args["enabled"],
                    "rollout": percentage if percentage is not None else current.rollout,
                    "stickiness": args["stickiness"] if percentage is not None else current.stickiness,
                }
            )
        finally:
            client.close()
        if steps:
            self.audit(
                "feature_flag",
                backend="unleash",
                project=args["project"],
                environment=args["environment"],
                flag=args["name"],
                steps=steps,
                after=after,
                gate=_gate_summary(args.get("gate")),
            )
        return {
            "changed": bool(steps),
            "steps": steps,
            "flag": after,
            "requests_sent": client.requests_sent,
            "diff": {"before": current.as_dict(), "after": after},
        }

    @staticmethod
    def _apply(client: UnleashClient, steps: Any, args: Dict[str, Any], percentage: Any) -> None:
        if "archive" in steps:
            client.archive()
            return
        if "create" in steps:
            client.create(args["flag_type"], args["description"])
        state = client.read()
        if "rollout" in steps:
            client.set_rollout(state, percentage, args["stickiness"])
        if "enable" in steps or "disable" in steps:
            client.set_enabled(args["enabled"])


def _gate_summary(gate: Any) -> Any:
    if not gate:
        return None
    return {key: gate.get(key) for key in ("decision", "subject", "decided_at", "inputs_digest")}
