# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.change_request (documentation in plugins/modules/change_request.py)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff
from ansible_collections.relops.release.plugins.plugin_utils.governance.times import servicenow_moment
from ansible_collections.relops.release.plugins.plugin_utils.itsm import model
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import (
    ITSM_ARGUMENT_SPEC,
    ItsmActionBase,
    public_change,
    text_fields,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.backend import ItsmBackend, Record, check_route
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import resolve_ci_ids
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError

FIELD_OPTIONS = (
    "short_description",
    "description",
    "assignment_group",
    "risk",
    "impact",
    "priority",
    "category",
    "start_date",
    "end_date",
    "implementation_plan",
    "backout_plan",
    "test_plan",
    "justification",
    "correlation_display",
)

DATE_OPTIONS = ("start_date", "end_date")

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "number": {"type": "str"},
    "correlation_id": {"type": "str"},
    "type": {"type": "str", "choices": list(model.CHANGE_TYPES), "default": "normal"},
    "template": {"type": "str"},
    "state": {"type": "str", "choices": list(model.STATE_VALUES)},
    **{name: {"type": "str"} for name in FIELD_OPTIONS},
    "other": {"type": "dict", "default": {}},
    "configuration_items": {"type": "list", "elements": "str", "default": []},
    "environment": {"type": "str"},
    "work_notes": {"type": "str"},
    "close_code": {"type": "str", "choices": list(model.CLOSE_CODES)},
    "close_notes": {"type": "str"},
    "approval": {"type": "str", "choices": ["approved", "rejected"]},
    "approval_comments": {"type": "str", "default": ""},
    "wait_for": {
        "type": "dict",
        "options": {
            "state": {"type": "str", "choices": list(model.STATE_VALUES)},
            "approval": {"type": "str", "choices": ["approved", "rejected"]},
            "timeout": {"type": "float", "default": 600.0},
            "interval": {"type": "float", "default": 2.0},
            "max_interval": {"type": "float", "default": 30.0},
        },
    },
    "check_conflicts": {"type": "bool", "default": False},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        _check_arguments(args)
        with self.itsm_backend(args, write=True) as backend:
            result = self._ensure(backend, args)
        result["requests_sent"] = self.requests_sent
        return result

    def _ensure(self, backend: ItsmBackend, args: Dict[str, Any]) -> Dict[str, Any]:
        fields = _wanted_fields(args)
        existing = _find(backend, args)
        # Before anything is created: a CI that does not resolve must leave no change without its CIs.
        ci_ids = resolve_ci_ids(backend, args["configuration_items"], args.get("environment"))
        if existing is None:
            _check_new_change(args)
            if self.check_mode:
                after = dict(fields, type=args["type"], state=args["state"] or "new")
                return {
                    "changed": True,
                    "created": True,
                    "change": after,
                    "states_passed": [],
                    "diff": {"before": {}, "after": after},
                }
            change, created = backend.ensure_change(args["type"], fields, args.get("template"))
        else:
            change, created = existing, False
        before = public_change(change)
        delta = {k: v for k, v in fields.items() if str(change.get(k) or "") != v and k != "correlation_id"}
        change = self._apply_fields(backend, change, delta)
        cis_added = self._ensure_cis(backend, change, ci_ids)
        noted = self._apply_note(backend, change, args.get("work_notes"))
        change, decided = self._apply_approval(backend, change, args)
        change, passed, moved = self._apply_state(backend, change, args)
        wait = args.get("wait_for")
        if wait and not self.check_mode and (wait.get("state") or wait.get("approval")):
            change = backend.wait_for(change, wait.get("state"), wait.get("approval"), _backoff(wait))
        result: Dict[str, Any] = {
            "changed": created or bool(delta) or cis_added or noted or decided or moved,
            "created": created,
            "states_passed": passed,
        }
        if args["check_conflicts"]:
            result["conflicts"] = backend.conflicts(change)
        result["change"] = public_change(change)
        result["change"]["configuration_items"] = backend.change_cis(change)
        if self.diff_mode:
            planned = dict(before, **delta, **({"state": args["state"]} if moved else {}))
            after = planned if self.check_mode else dict(result["change"])
            after.pop("configuration_items", None)
            result["diff"] = {"before": {} if created else before, "after": after}
        return result

    def _apply_fields(self, backend: ItsmBackend, change: Record, delta: Dict[str, str]) -> Record:
        if delta and not self.check_mode:
            return backend.write_change(change, delta)
        return change

    def _apply_note(self, backend: ItsmBackend, change: Record, note: Optional[str]) -> bool:
        if not note or backend.has_work_note(change, note):
            return False
        if not self.check_mode:
            backend.add_work_note(change, note)
        return True

    def _apply_approval(self, backend: ItsmBackend, change: Record, args: Dict[str, Any]) -> "tuple[Record, bool]":
        decision = args.get("approval")
        if not decision or change.get("approval") == decision:
            return change, False
        if change["state"] != "authorize" or change.get("approval") != "requested":
            raise ITSMError(
                "change %s cannot be %s: it is in %s with approval %s; move it to authorize first"
                % (change["number"], decision, change["state"], change.get("approval"))
            )
        if self.check_mode:
            return change, True
        return backend.decide_approval(change, decision, args["approval_comments"]), True

    def _apply_state(
        self, backend: ItsmBackend, change: Record, args: Dict[str, Any]
    ) -> "tuple[Record, List[str], bool]":
        target = args.get("state")
        if not target or change["state"] == target or _already_past(change["state"], target):
            return change, [], False
        closing = text_fields({"close_code": args.get("close_code"), "close_notes": args.get("close_notes")})
        if target == "closed" and not (closing.get("close_code") or change.get("close_code")):
            raise ITSMError(
                "closing change %s needs close_code (one of %s)" % (change["number"], ", ".join(model.CLOSE_CODES))
            )
        if self.check_mode:
            return change, backend.plan_moves(change, target), True
        moved, passed = backend.move_to(change, target, closing, wait=self._approval_waiter(backend, args))
        return moved, passed, True

    def _approval_waiter(self, backend: ItsmBackend, args: Dict[str, Any]) -> Optional[Any]:
        wait = args.get("wait_for")
        if not wait:
            return None
        return lambda change: backend.wait_for(change, None, "approved", _backoff(wait))

    def _ensure_cis(self, backend: ItsmBackend, change: Record, sys_ids: List[str]) -> bool:
        if not sys_ids:
            return False
        present = backend.change_cis(change) if change.get("sys_id") else []
        missing = [s for s in sys_ids if s not in present]
        if missing and not self.check_mode:
            backend.add_change_cis(change, missing)
        return bool(missing)


def _check_arguments(args: Dict[str, Any]) -> None:
    if not args.get("number") and not args.get("correlation_id"):
        raise ITSMError(
            "give correlation_id (e.g. the release id) to create or find a change, or number for an existing one; "
            "without either a rerun would create a second change"
        )
    if args["type"] == "standard" and not args.get("template") and not args.get("number"):
        raise ITSMError(
            "type standard needs template: the standard change template's name (a std_change_record_producer, or one "
            "std_change_producer_version)"
        )
    if args.get("close_code") and args.get("state") not in (None, "closed"):
        raise ITSMError("close_code only applies with state: closed; remove it or set state: closed")


def _already_past(current: str, target: str) -> bool:
    """A rerun asks for a state the change has since moved beyond; that request is already met."""
    order = model.STATE_ORDER
    return current in order and target in order and order.index(current) > order.index(target)


def _check_new_change(args: Dict[str, Any]) -> None:
    """Refuse before creating anything a request the new change could not complete."""
    target = args.get("state")
    if not target:
        return
    if target == "closed" and not args.get("close_code"):
        raise ITSMError("closing a change needs close_code (one of %s)" % ", ".join(model.CLOSE_CODES))
    approval = "approved" if args["type"] == "standard" else "not requested"
    draft = {"number": "(new %s change)" % args["type"], "state": "new", "type": args["type"], "approval": approval}
    check_route(draft, target, model.allowed_next_states(args["type"], "new", approval), bool(args.get("wait_for")))


def _wanted_fields(args: Dict[str, Any]) -> Dict[str, str]:
    fields = text_fields({name: args.get(name) for name in FIELD_OPTIONS})
    for name in DATE_OPTIONS:
        if fields.get(name):
            try:
                fields[name] = servicenow_moment(fields[name], name)
            except ValueError as exc:
                raise ITSMError(str(exc)) from None
    fields.update(text_fields(args.get("other") or {}))
    if args.get("correlation_id"):
        fields["correlation_id"] = args["correlation_id"]
    return fields


def _find(backend: ItsmBackend, args: Dict[str, Any]) -> Optional[Record]:
    if args.get("number"):
        return backend.require_change(number=args["number"])
    if args.get("correlation_id"):
        return backend.get_change(correlation_id=args["correlation_id"])
    return None


def _backoff(wait: Dict[str, Any]) -> Backoff:
    return Backoff(
        timeout=float(wait["timeout"]), initial=float(wait["interval"]), factor=1.5, maximum=float(wait["max_interval"])
    )
