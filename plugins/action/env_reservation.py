# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.env_reservation (documentation in plugins/modules/env_reservation.py)."""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, parse_timestamp
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.ledger.planning_store import (
    ReservationRequest,
    raise_conflict,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "starts_at": {"type": "str"},
    "ends_at": {"type": "str"},
    "duration": {"type": "int"},
    "owner": {"type": "str"},
    "purpose": {"type": "str"},
    "data_name": {"type": "str"},
    **LEDGER_ARGUMENT_SPEC,
}

# PostgreSQL truncates identifiers past 63 bytes; a data name must survive as a database or schema name.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_COMPARED = ("owner", "purpose", "data_name", "starts_at", "ends_at")


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["state"] == "absent":
            return self._release(args)
        request = self._request(args)
        if self.check_mode:
            return self._predict(args, request)
        with self.open_task_ledger(args, touch=False) as ledger:
            current = ledger.get_reservation(request.service, request.name)
            if current is not None and _same(current, request):
                return _result(False, current, current)
            row, previous = ledger.reserve(self.actor, request)
        self.audit("reservation", action="reserved", **_public(row))
        return _result(True, previous, row)

    def _predict(self, args: Dict[str, Any], request: ReservationRequest) -> Dict[str, Any]:
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            return _result(True, None, _as_row(request))
        with ledger:
            current = ledger.get_reservation(request.service, request.name)
            if current is not None and _same(current, request):
                return _result(False, current, current)
            conflicts = ledger.reservation_conflicts(request)
        if conflicts:
            raise_conflict(request, conflicts[0])
        return _result(True, current, _as_row(request))

    def _release(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if self.check_mode:
            ledger = self.open_task_ledger_readonly(args)
            current = None
            if ledger is not None:
                with ledger:
                    current = ledger.get_reservation(args["service"], args["name"])
            return _result(current is not None, current, None)
        with self.open_task_ledger(args, touch=False) as ledger:
            current = ledger.release_reservation(self.actor, args["service"], args["name"])
        if current is not None:
            self.audit("reservation", action="released", **_public(current))
        return _result(current is not None, current, None)

    def _request(self, args: Dict[str, Any]) -> ReservationRequest:
        starts = _moment("starts_at", args.get("starts_at"))
        if args.get("ends_at") and args.get("duration"):
            raise LedgerError("give ends_at or duration (minutes), not both")
        if args.get("ends_at"):
            ends = _moment("ends_at", args["ends_at"])
        elif args.get("duration"):
            if args["duration"] < 1:
                raise LedgerError("duration %r must be at least 1 (minutes)" % args["duration"])
            ends = starts + datetime.timedelta(minutes=args["duration"])
        else:
            raise LedgerError("state=present needs ends_at (RFC 3339) or duration (minutes) besides starts_at")
        if ends <= starts:
            raise LedgerError(
                "reservation %r ends at %s, not after it starts (%s); give a later ends_at"
                % (args["name"], format_timestamp(ends), format_timestamp(starts))
            )
        data_name = args.get("data_name") or default_data_name(args["service"], args["name"])
        if not _IDENTIFIER.match(data_name):
            raise LedgerError(
                "data_name %r is not a usable database or schema name; use lower-case letters, digits"
                " and '_', starting with a letter or '_', at most 63 characters" % data_name
            )
        return ReservationRequest(
            service=args["service"],
            name=args["name"],
            owner=args.get("owner") or self.actor.awx_user_name or self.actor.sudo_user or self.actor.user,
            starts_at=format_timestamp(starts),
            ends_at=format_timestamp(ends),
            data_name=data_name,
            purpose=args.get("purpose"),
        )


def default_data_name(service: str, name: str) -> str:
    """A database/schema name unique to the reservation: service and reservation name, folded to an identifier."""
    folded = re.sub(r"[^a-z0-9_]+", "_", ("%s_%s" % (service, name)).lower()).strip("_")
    if not folded or folded[0].isdigit():
        folded = "r_" + folded
    return folded[:63]


def _moment(option: str, text: Optional[str]) -> datetime.datetime:
    if not text:
        raise LedgerError("state=present needs %s, an RFC 3339 time such as 2026-12-01T09:00:00Z" % option)
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise LedgerError("%s: %s" % (option, exc)) from None


def _same(current: Dict[str, Any], request: ReservationRequest) -> bool:
    wanted = _as_row(request)
    return all(current.get(key) == wanted[key] for key in _COMPARED)


def _as_row(request: ReservationRequest) -> Dict[str, Any]:
    return {
        "service": request.service,
        "name": request.name,
        "owner": request.owner,
        "purpose": request.purpose,
        "data_name": request.data_name,
        "starts_at": request.starts_at,
        "ends_at": request.ends_at,
        "status": "active",
    }


def _public(row: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if row is None:
        return {}
    return {
        key: row.get(key)
        for key in ("id", "service", "name", "owner", "purpose", "data_name", "status", "starts_at", "ends_at")
    }


def _result(changed: bool, before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        "changed": changed,
        "reservation": _public(after) if after else None,
        "data_name": after["data_name"] if after else None,
    }
    if changed:
        result["diff"] = {"before": _public(before), "after": _public(after)}
    return result
