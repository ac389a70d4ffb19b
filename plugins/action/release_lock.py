# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.release_lock (documentation in plugins/modules/release_lock.py)."""

from __future__ import annotations

import datetime
from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp, now_timestamp, utc_now
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff, poll_until
from ansible_collections.relops.release.plugins.plugin_utils.ledger import (
    Ledger,
    LedgerError,
    LockAttempt,
    LockState,
    ensure_holder,
    ensure_releasable,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.lock_recovery_store import (
    holder_is_dead,
    holder_survivors,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor, controller_process

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "default": "acquired", "choices": ["acquired", "released", "heartbeat", "status"]},
    "ttl": {"type": "int", "default": 1800},
    "wait_timeout": {"type": "int", "default": 0},
    "force": {"type": "bool", "default": False},
    "process_bound": {"type": "bool", "default": False},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        _check_numbers(args)
        before = self._read_current_lock(args)
        result = self._decide(args, before)
        result["run_id"] = self.actor.run_id
        if self.diff_mode:
            result["diff"] = {
                "before": _holder_text(before),
                "after": _holder_text(_lock_or_none(result.get("lock"))),
                "before_header": "lock %s" % args["name"],
                "after_header": "lock %s" % args["name"],
            }
        return result

    def _read_current_lock(self, args: Dict[str, Any]) -> Optional[LockState]:
        """Read the lock without creating the ledger or recording a run."""
        existing = self.open_task_ledger_readonly(args)
        if existing is None:
            return None
        with existing:
            return existing.get_lock(args["name"])

    def _decide(self, args: Dict[str, Any], before: Optional[LockState]) -> Dict[str, Any]:
        """Answer from what was read when nothing needs writing; otherwise write (outside check mode)."""
        state = args["state"]
        if state == "status":
            return _status(before)
        if state == "released" and not _needs_release(before, self.actor.run_id):
            return {"changed": False, "outcome": "not_held", "lock": None}
        if state == "released" and before is not None:
            ensure_releasable(before, args["name"], self.actor, args["force"])
        if state == "heartbeat":
            ensure_holder(before, args["name"], self.actor)
        if self.check_mode:
            return self._predict(args, before)
        with self.open_task_ledger(args) as ledger:
            if state == "acquired":
                return self._acquire(ledger, args)
            if state == "released":
                return self._release(ledger, args)
            lock = ledger.heartbeat_lock(args["name"], self.actor)
            return {"changed": False, "outcome": "renewed", "lock": lock.as_dict()}

    def _acquire(self, ledger: Ledger, args: Dict[str, Any]) -> Dict[str, Any]:
        # Only a process-bound lock records its process; any holder that did is taken over once it is gone.
        process = controller_process() if args["process_bound"] else None
        polled = poll_until(
            lambda: _try_lock(ledger, args["name"], self.actor, args["ttl"], process),
            lambda attempt: attempt.obtained,
            Backoff(timeout=float(args["wait_timeout"])),
        )
        attempt = polled.value
        timing = {"waited": round(polled.waited, 3), "attempts": polled.attempts}
        if not attempt.obtained:
            return {
                "failed": True,
                "changed": False,
                "outcome": "held",
                "lock": attempt.holder.as_dict() if attempt.holder else None,
                "msg": _held_message(args["name"], attempt.holder, args["wait_timeout"]),
                **timing,
            }
        result: Dict[str, Any] = {
            "changed": attempt.outcome != "renewed",
            "outcome": attempt.outcome,
            "lock": attempt.lock.as_dict() if attempt.lock else None,
            **timing,
        }
        if attempt.previous is not None:
            result["previous_holder"] = attempt.previous.as_dict()
            result["warnings"] = [_takeover_warning(args["name"], attempt.previous)]
        return result

    def _release(self, ledger: Ledger, args: Dict[str, Any]) -> Dict[str, Any]:
        released = ledger.release_lock(args["name"], self.actor, force=args["force"])
        if released is None:
            return {"changed": False, "outcome": "not_held", "lock": None}
        result: Dict[str, Any] = {"changed": True, "outcome": "released", "lock": None}
        if released.owner_run_id != self.actor.run_id:
            result["previous_holder"] = released.as_dict()
        return result

    def _predict(self, args: Dict[str, Any], before: Optional[LockState]) -> Dict[str, Any]:
        """Check mode: what the write would do, from what was read."""
        if args["state"] == "heartbeat":
            return {"changed": False, "outcome": "renewed", "lock": before.as_dict() if before else None}
        if args["state"] == "released":
            result: Dict[str, Any] = {"changed": True, "outcome": "released", "lock": None}
            if before is not None and before.owner_run_id != self.actor.run_id:
                result["previous_holder"] = before.as_dict()
            return result
        timing = {"waited": 0.0, "attempts": 0}
        if before is None:
            return {"changed": True, "outcome": "acquired", "lock": self._predicted_lock(args), **timing}
        if before.owner_run_id == self.actor.run_id:
            return {"changed": False, "outcome": "renewed", "lock": before.as_dict(), **timing}
        if before.expires_at <= now_timestamp() or holder_is_dead(before):
            return {
                "changed": True,
                "outcome": "taken_over",
                "lock": self._predicted_lock(args),
                "previous_holder": before.as_dict(),
                **timing,
            }
        return {
            "changed": False,
            "outcome": "held",
            "lock": before.as_dict(),
            "msg": "check mode: " + _held_message(args["name"], before, 0),
            **timing,
        }

    def _predicted_lock(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """The lock as this run would hold it, for check mode's result and diff."""
        moment = utc_now()
        now = format_timestamp(moment)
        return LockState(
            name=args["name"],
            owner_run_id=self.actor.run_id,
            owner=self.actor.as_dict(),
            acquired_at=now,
            heartbeat_at=now,
            expires_at=format_timestamp(moment + datetime.timedelta(seconds=args["ttl"])),
            ttl_seconds=args["ttl"],
        ).as_dict()


def _try_lock(ledger: Ledger, name: str, actor: Actor, ttl: int, process: Optional[Dict[str, Any]]) -> LockAttempt:
    """Try once; a holder whose ansible-playbook died on this host loses the lock at once, not at its expiry."""
    attempt = ledger.try_lock(name, actor, ttl, process=process)
    if attempt.outcome == "held" and attempt.holder is not None and holder_is_dead(attempt.holder):
        return ledger.take_over_dead_lock(name, actor, ttl, attempt.holder, process=process)
    return attempt


def _takeover_warning(name: str, previous: LockState) -> str:
    if previous.expires_at > now_timestamp():
        process = previous.owner.get("process") or {}
        return "lock %r was taken over from %s, whose ansible-playbook (pid %s) is no longer running" % (
            name,
            previous.describe_holder(),
            process.get("pid", "?"),
        )
    return "lock %r had expired at %s and was taken over from %s" % (
        name,
        previous.expires_at,
        previous.describe_holder(),
    )


def _status(before: Optional[LockState]) -> Dict[str, Any]:
    if before is None or before.expires_at <= now_timestamp():
        return {"changed": False, "outcome": "free", "lock": before.as_dict() if before else None}
    return {"changed": False, "outcome": "held", "lock": before.as_dict()}


def _needs_release(before: Optional[LockState], run_id: str) -> bool:
    """Whether a release has anything to do: another run's expired lock is already free."""
    if before is None:
        return False
    return before.owner_run_id == run_id or before.expires_at > now_timestamp()


def _check_numbers(args: Dict[str, Any]) -> None:
    if args["ttl"] < 1:
        raise LedgerError("ttl %r is not a positive number of seconds; use e.g. ttl: 1800" % args["ttl"])
    if args["wait_timeout"] < 0:
        raise LedgerError(
            "wait_timeout %r is negative; use 0 to try once or a number of seconds to wait" % args["wait_timeout"]
        )


def _held_message(name: str, holder: Optional[LockState], waited: int) -> str:
    if holder is None:
        return "lock %r could not be taken; try again" % name
    survivors = holder_survivors(holder)
    if survivors:
        return (
            "lock %r is held by %s, whose ansible-playbook is gone but whose worker process(es) %s still run a "
            "task (waited %ds); the lock is taken over once they end, or at %s; wait, or stop them and run again"
            % (name, holder.describe_holder(), ", ".join(str(pid) for pid in survivors), waited, holder.expires_at)
        )
    return (
        "lock %r is held by %s since %s and expires at %s (waited %ds); wait for that release to finish, "
        "raise wait_timeout, or release it with force: true if that run is dead"
        % (name, holder.describe_holder(), holder.acquired_at, holder.expires_at, waited)
    )


def _holder_text(lock: Optional[LockState]) -> str:
    # The expiry is left out: a renewal moves it without changing who holds the lock.
    if lock is None:
        return "free\n"
    return "held by %s\n" % lock.describe_holder()


def _lock_or_none(document: Any) -> Optional[LockState]:
    if not isinstance(document, dict):
        return None
    return LockState(**document)
