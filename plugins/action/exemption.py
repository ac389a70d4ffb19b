# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.exemption (documentation in plugins/modules/exemption.py)."""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import (
    format_timestamp,
    parse_timestamp,
    utc_now,
)
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.policy import EXEMPTABLE_CHECKS, load_policy

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "state": {"type": "str", "default": "present", "choices": ["present", "revoked", "list"]},
    "name": {"type": "str"},
    "rule": {"type": "str", "choices": list(EXEMPTABLE_CHECKS)},
    "team": {"type": "str"},
    "service": {"type": "str"},
    "approver": {"type": "str"},
    "reason": {"type": "str"},
    "expires_at": {"type": "str"},
    "requested_by": {"type": "str"},
    "include_inactive": {"type": "bool", "default": False},
    "policy": {"type": "path"},
    **LEDGER_ARGUMENT_SPEC,
}
COMPARED = ("rule", "team", "service", "approver", "reason", "expires_at")


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        state = args["state"]
        if state == "list":
            return self._list(args)
        if not args.get("name"):
            raise LedgerError("state=%s needs the exemption's name (e.g. name: payments-freeze-hotfix)" % state)
        before = self._read(args, lambda ledger: ledger.get_exemption(args["name"]))
        result = self._revoke(args, before) if state == "revoked" else self._create(args, before)
        if self.diff_mode:
            result["diff"] = {
                "before": _describe(before),
                "after": _describe(result.get("exemption")),
                "before_header": "exemption %s" % args["name"],
                "after_header": "exemption %s" % args["name"],
            }
        return result

    def _read(self, args: Dict[str, Any], query: Any) -> Any:
        existing = self.open_task_ledger_readonly(args)
        if existing is None:
            return None
        with existing as ledger:
            return query(ledger)

    def _create(self, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        wanted = self._validated(args)
        if before is not None:
            differs = [key for key in COMPARED if (before.get(key) or None) != (wanted.get(key) or None)]
            if differs:
                raise LedgerError(
                    "exemption %s exists with other %s; exemptions are immutable: revoke it and create one with a "
                    "new name" % (args["name"], ", ".join(differs))
                )
            return {"changed": False, "exemption": _public(before)}
        if self.check_mode:
            return {"changed": True, "exemption": _public(dict(wanted, created_at=None, revoked_at=None))}
        with self.open_task_ledger(args) as ledger:
            row, created = ledger.create_exemption(self.actor, wanted)
        self.audit("exemption", action="created" if created else "exists", **_public(row))
        return {"changed": created, "exemption": _public(row)}

    def _validated(self, args: Dict[str, Any]) -> Dict[str, Any]:
        missing = [key for key in ("rule", "approver", "reason", "expires_at") if not args.get(key)]
        if missing:
            raise LedgerError(
                "exemption %s needs %s: an exemption names the rule it waives, who approved it, why, and when it "
                "expires (e.g. expires_at: 2026-12-01T00:00:00Z)" % (args["name"], ", ".join(missing))
            )
        if not (args.get("team") or args.get("service")):
            raise LedgerError("exemption %s needs a scope: give service, team or both" % args["name"])
        try:
            expires = parse_timestamp(args["expires_at"])
        except ValueError as exc:
            raise LedgerError("expires_at: %s" % exc) from None
        now = utc_now()
        if expires <= now:
            raise LedgerError("expires_at %s is in the past; give a future time" % args["expires_at"])
        policy = load_policy(self.optional_local_path(args.get("policy")))
        longest = int(policy.exemptions["max_days"])
        if expires - now > datetime.timedelta(days=longest):
            raise LedgerError(
                "expires_at %s is more than %d days away, the longest policy %s allows; shorten it"
                % (args["expires_at"], longest, policy.name)
            )
        if args["rule"] not in policy.exemptions["exemptable"]:
            raise LedgerError(
                "policy %s does not let exemptions waive %s (it allows %s)"
                % (policy.name, args["rule"], ", ".join(policy.exemptions["exemptable"]))
            )
        requester = args.get("requested_by") or self.actor.awx_user_name or self.actor.sudo_user or self.actor.user
        if requester == args["approver"]:
            raise LedgerError(
                "approver %s is also the requester; someone else must approve the exemption" % args["approver"]
            )
        return {
            "name": args["name"],
            "rule": args["rule"],
            "team": args.get("team"),
            "service": args.get("service"),
            "approver": args["approver"],
            "reason": args["reason"],
            "requested_by": requester,
            "expires_at": format_timestamp(expires),
        }

    def _revoke(self, args: Dict[str, Any], before: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        if before is None:
            raise LedgerError("exemption %s does not exist; list them with state: list" % args["name"])
        if before.get("revoked_at"):
            return {"changed": False, "exemption": _public(before)}
        who = args.get("requested_by") or self.actor.user
        reason = args.get("reason") or "revoked"
        if self.check_mode:
            return {"changed": True, "exemption": _public(dict(before, revoked_at="(now)", revoked_by=who))}
        with self.open_task_ledger(args) as ledger:
            row = ledger.revoke_exemption(self.actor, args["name"], who, reason)
        after = row or before
        self.audit("exemption", action="revoked", **_public(after))
        return {"changed": row is not None, "exemption": _public(after)}

    def _list(self, args: Dict[str, Any]) -> Dict[str, Any]:
        def query(ledger: Ledger) -> List[Dict[str, Any]]:
            rows = ledger.list_exemptions(
                rule=args.get("rule"),
                service=args.get("service"),
                team=args.get("team"),
                include_inactive=args["include_inactive"],
            )
            return [dict(_public(row), uses=len(ledger.exemption_uses(int(row["id"])))) for row in rows]

        found = self._read(args, query) or []
        return {"changed": False, "exemptions": found, "count": len(found)}


def _public(row: Dict[str, Any]) -> Dict[str, Any]:
    shown = {key: value for key, value in row.items() if key not in ("id", "run_id")}
    if row.get("revoked_at"):
        shown["status"] = "revoked"
    elif row.get("expires_at") and parse_timestamp(row["expires_at"]) <= utc_now():
        shown["status"] = "expired"
    else:
        shown["status"] = "active"
    return shown


def _describe(row: Optional[Dict[str, Any]]) -> str:
    if not row:
        return "absent\n"
    return "%s waives %s for %s until %s (%s)\n" % (
        row.get("name"),
        row.get("rule"),
        row.get("service") or row.get("team"),
        row.get("expires_at"),
        _public(row)["status"],
    )
