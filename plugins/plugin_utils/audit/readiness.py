# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The "audit required" check: is the audit callback writing this run, and does the trail's tail verify?

A gate asks this from inside a task. How a task can tell that the callback runs:

- When the callback has written the run's ``playbook_start`` it exports
  ``RELOPS_AUDIT_TRAIL`` (the trail's absolute path), like ``RELOPS_RUN_ID``;
  task workers fork from the ansible-playbook process afterwards and inherit
  it. When the callback cannot write, it exports ``RELOPS_AUDIT_ERROR``
  instead, so the answer names the cause.
- The variable only says where to look; it is not believed. The trail itself
  must hold this run's ``playbook_start`` and, for the asking task, its
  ``task_start`` (the callback writes it before the task's action runs), with
  good MACs. A variable set by hand, a callback that stopped writing, or one
  that writes another file fails that check. Reading the callback's settings
  from Ansible's configuration was rejected: it says the callback is listed,
  not that it started or that it writes.

The tail checked is everything from the last checkpoint before this run's
first line to the end of the trail (across rotated files): chain, MACs and
checkpoint signatures, no ``tamper_detected`` record in it, no torn line; and
against the ledger: the trail still holds the newest anchored checkpoint, and
the checkpoint the window starts at is anchored (so the callback anchors into
this very ledger).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.relops.release.plugins.plugin_utils.audit.anchors import AnchorStore
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import line_hash, without_field
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import check_signature, line_mac
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import (
    TAMPER_EVENT,
    event_of,
    lines_backwards,
    trail_files,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger

AUDIT_TRAIL_ENV = "RELOPS_AUDIT_TRAIL"
AUDIT_ERROR_ENV = "RELOPS_AUDIT_ERROR"
CALLBACK_NAME = "relops.release.audit"
_ENABLE = (
    "set callbacks_enabled = %s under [defaults] in ansible.cfg (or ANSIBLE_CALLBACKS_ENABLED=%s), with the "
    "trail's keys under [relops_audit] (docs/audit.md)" % (CALLBACK_NAME, CALLBACK_NAME)
)
_START_EVENTS = ("task_start", "handler_start")


@dataclass
class AuditReadiness:
    """The answer: ``ready``, and a ``reason`` naming what is wrong and how to fix it (or what was checked)."""

    ready: bool
    reason: str
    run_id: str
    trail: Optional[str] = None
    checked: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {"ready": self.ready, "reason": self.reason, "run_id": self.run_id, "trail": self.trail, **self.checked}


def check_audit_ready(
    run_id: str,
    hmac_key: Optional[bytes],
    public_keys: Mapping[str, "Ed25519PublicKey"],
    ledger: Optional["Ledger"],
    trail_path: Optional[str] = None,
    task_uuid: Optional[str] = None,
    require_keys: bool = True,
    environ: Optional[Mapping[str, str]] = None,
) -> AuditReadiness:
    """Whether the audit callback writes run ``run_id`` (and task ``task_uuid``) and the trail's tail verifies.

    ``trail_path`` is the trail the policy requires (default: the one the
    callback says it writes). Without the HMAC key and the public keys the
    tail can be checked as a chain only, which is not ready unless
    ``require_keys`` is false.
    """
    env = os.environ if environ is None else environ
    written = env.get(AUDIT_TRAIL_ENV)
    if not written:
        error = env.get(AUDIT_ERROR_ENV)
        if error:
            return AuditReadiness(
                False,
                "audit callback %s is enabled but does not write the trail: %s; fix that and run again"
                % (CALLBACK_NAME, error),
                run_id,
            )
        return AuditReadiness(
            False, "audit callback %s is not enabled for this run: %s" % (CALLBACK_NAME, _ENABLE), run_id
        )
    trail = os.path.abspath(os.path.expanduser(trail_path or written))
    if trail != os.path.abspath(written):
        return AuditReadiness(
            False,
            "audit callback %s writes %s, but the required trail is %s: set [relops_audit] path "
            "(RELOPS_AUDIT_PATH) to %s" % (CALLBACK_NAME, written, trail, trail),
            run_id,
            trail,
        )
    if require_keys and (hmac_key is None or not public_keys):
        return AuditReadiness(
            False,
            "the tail of audit trail %s can only be checked as a chain, which is not verified: give the trail's "
            "HMAC key (hmac_key_file) and the public keys of its checkpoints (public_keys)" % trail,
            run_id,
            trail,
        )
    if ledger is None:
        return AuditReadiness(
            False,
            "no ledger to check audit trail %s against: its checkpoints are anchored in the ledger; give the task "
            "the ledger_url the audit callback uses" % trail,
            run_id,
            trail,
        )
    return _TailCheck(trail, run_id, hmac_key, public_keys, ledger, task_uuid).run()


def check_audit_ready_for_task(
    task: Any,
    hmac_key: Optional[bytes],
    public_keys: Mapping[str, "Ed25519PublicKey"],
    ledger: Optional["Ledger"],
    trail_path: Optional[str] = None,
    require_keys: bool = True,
) -> AuditReadiness:
    """``check_audit_ready`` for the task an action plugin runs (``self._task``): this run, this very task."""
    from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_run_id  # noqa: PLC0415

    return check_audit_ready(
        current_run_id(),
        hmac_key,
        public_keys,
        ledger,
        trail_path=trail_path,
        task_uuid=getattr(task, "_uuid", None),
        require_keys=require_keys,
    )


class _TailCheck:
    def __init__(
        self,
        trail: str,
        run_id: str,
        hmac_key: Optional[bytes],
        public_keys: Mapping[str, "Ed25519PublicKey"],
        ledger: "Ledger",
        task_uuid: Optional[str],
    ) -> None:
        self.trail = trail
        self.run_id = run_id
        self.hmac_key = hmac_key
        self.public_keys = public_keys
        self.store = AnchorStore(ledger)
        self.ledger_name = ledger.backend.description
        self.task_uuid = task_uuid

    def refuse(self, reason: str, **checked: Any) -> AuditReadiness:
        return AuditReadiness(False, reason, self.run_id, self.trail, checked)

    def run(self) -> AuditReadiness:
        files = trail_files(self.trail)
        if not files:
            return self.refuse("audit trail %s does not exist, although the callback says it writes it" % self.trail)
        with open(files[-1], "rb") as handle:
            handle.seek(max(0, os.path.getsize(files[-1]) - 1))
            if handle.read(1) not in (b"\n", b""):
                return self.refuse(
                    "audit trail %s ends in the middle of a line: a write was cut; the next run records it as "
                    "tamper_detected, run relops.release.audit_verify on it" % self.trail
                )
        anchors = self.store.standing(self.trail)
        newest = anchors[0] if anchors else None
        window = self.window(files, newest.seq if newest is not None else None)
        if isinstance(window, str):
            return self.refuse(window)
        problem = self.verify(window)
        if problem is not None:
            return self.refuse(problem)
        lines = {event["seq"]: digest for event, digest, _line in window}
        last_seq = window[-1][0]["seq"]
        if newest is not None and lines.get(newest.seq) != newest.head:
            held = (
                "holds another line at seq %d" % newest.seq if newest.seq <= last_seq else "ends at seq %d" % last_seq
            )
            return self.refuse(
                "audit trail %s was cut: the ledger anchors checkpoint seq %d of run %s, but the trail %s; "
                "run relops.release.audit_verify with the ledger to see what is missing"
                % (self.trail, newest.seq, newest.run_id, held)
            )
        start, start_digest = window[0][0], window[0][1]
        if start.get("event") == "checkpoint" and not self.store.holds(self.trail, start["seq"], start_digest):
            return self.refuse(
                "checkpoint seq %d of audit trail %s, the last before this run, is not anchored in the %s: the audit "
                "callback anchors its checkpoints in another ledger (set [relops_audit] ledger_url or "
                "RELOPS_LEDGER_URL to this one) or could not reach it (see the run's warnings)"
                % (start["seq"], self.trail, self.ledger_name)
            )
        checked = {
            "from_seq": start["seq"],
            "to_seq": last_seq,
            "lines": len(window),
            "macs_checked": True,
            "signatures_checked": bool(self.public_keys),
            "anchor_seq": newest.seq if newest is not None else None,
        }
        return AuditReadiness(
            True,
            "audit trail %s is written for run %s and its tail verifies: seq %d..%d%s"
            % (
                self.trail,
                self.run_id,
                start["seq"],
                last_seq,
                ", holding the ledger's newest anchor seq %d" % newest.seq if newest is not None else "",
            ),
            self.run_id,
            self.trail,
            checked,
        )

    def window(self, files: List[str], anchor_seq: Optional[int]) -> Any:
        """The lines from the last checkpoint before this run to the end, oldest first, or why there are none.

        Read backwards; it also reaches down to the ledger's newest anchor.
        """
        taken: List[Tuple[Dict[str, Any], str, bytes]] = []
        seen_start = seen_task = False
        for path in reversed(files):
            for _offset, line in lines_backwards(path, os.path.getsize(path)):
                event = event_of(line)
                if event is None:
                    return (
                        "audit trail %s holds a line that is not an audit event near seq %s; run "
                        "relops.release.audit_verify on it" % (self.trail, taken[-1][0]["seq"] - 1 if taken else "?")
                    )
                taken.append((event, line_hash(line), line))
                kind = event.get("event")
                below_anchor = anchor_seq is None or event["seq"] <= anchor_seq
                if seen_start and below_anchor and kind == "checkpoint":
                    # The last checkpoint before this run's start (and at or below the ledger's newest anchor).
                    taken.reverse()
                    return self.require_task(taken, seen_task)
                mine = event.get("run_id") == self.run_id
                seen_start = seen_start or (mine and kind == "playbook_start")
                seen_task = seen_task or (mine and kind in _START_EVENTS and event.get("task_uuid") == self.task_uuid)
        if not seen_start:
            return (
                "audit trail %s holds no playbook_start of run %s: the audit callback writes another trail, or "
                "stopped writing; check its path option and the run's warnings" % (self.trail, self.run_id)
            )
        taken.reverse()
        return self.require_task(taken, seen_task)

    def require_task(self, taken: List[Tuple[Dict[str, Any], str, bytes]], seen_task: bool) -> Any:
        if self.task_uuid is not None and not seen_task:
            return (
                "audit trail %s holds no task_start of this task (%s) in run %s: the audit callback stopped writing "
                "during the run; see the run's warnings" % (self.trail, self.task_uuid, self.run_id)
            )
        return taken

    def verify(self, window: List[Tuple[Dict[str, Any], str, bytes]]) -> Optional[str]:
        previous: Optional[Tuple[int, str]] = None
        for event, _digest, line in window:
            seq = event["seq"]
            if previous is not None and (seq != previous[0] + 1 or event["prev"] != previous[1]):
                return (
                    "audit trail %s: seq %d does not link to the line before it; run relops.release.audit_verify "
                    "on it" % (self.trail, seq)
                )
            previous = (seq, line_hash(line))
            mac = event.get("mac")
            if self.hmac_key is not None and not (
                isinstance(mac, str) and compare_digest(line_mac(self.hmac_key, without_field(line, "mac", mac)), mac)
            ):
                return "audit trail %s: seq %d has no valid MAC (written without the trail's HMAC key, or changed)" % (
                    self.trail,
                    seq,
                )
            if event.get("event") == TAMPER_EVENT:
                damage = event.get("damage") or {}
                return (
                    "the audit writer found the trail %s damaged at seq %s and recorded it (tamper_detected seq %d: "
                    "%s); investigate with relops.release.audit_verify; the runs after this one start from a "
                    "tail that verifies" % (self.trail, damage.get("first_seq"), seq, damage.get("detail"))
                )
            if event.get("event") == "checkpoint" and self.public_keys:
                body = without_field(line, "mac", mac) if isinstance(mac, str) else line
                why = check_signature(self.public_keys, body, event)
                if why is not None:
                    return "audit trail %s: checkpoint seq %d: %s" % (self.trail, seq, why)
        return None
