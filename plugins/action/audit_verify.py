# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.audit_verify (documentation in plugins/modules/audit_verify.py)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple, Union

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.archived_audit import ArchivedTrail, apply, gather
from ansible_collections.relops.release.plugins.plugin_utils.audit.anchors import Anchor, AnchorStore
from ansible_collections.relops.release.plugins.plugin_utils.audit.readiness import check_audit_ready_for_task
from ansible_collections.relops.release.plugins.plugin_utils.audit.sealing import (
    AuditKeyError,
    load_hmac_key,
    load_public_keys,
)
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import trail_files
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import (
    AnchorError,
    Report,
    anchor_from_sink,
    verify_trail,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "path": {"type": "path"},
    "files": {"type": "list", "elements": "path"},
    "hmac_key": {"type": "str", "no_log": True},
    "hmac_key_file": {"type": "path"},
    "public_keys": {"type": "list", "elements": "path", "default": []},
    "anchor": {
        "type": "dict",
        "options": {"seq": {"type": "int", "required": True}, "head": {"type": "str", "required": True}},
    },
    "anchor_from": {"type": "list", "elements": "path"},
    "fail_on_problem": {"type": "bool", "default": True},
    "max_problems": {"type": "int", "default": 20},
    "archived": {"type": "bool", "default": False},
    "ledger_anchors": {"type": "bool", "default": True},
    "anchor_trail": {"type": "path"},
    "current_run": {"type": "bool", "default": False},
    **LEDGER_ARGUMENT_SPEC,
}


def default_trail_path() -> str:
    """The audit callback's default trail: RELOPS_AUDIT_PATH, else under XDG_STATE_HOME."""
    explicit = os.environ.get("RELOPS_AUDIT_PATH")
    if explicit:
        return os.path.expanduser(explicit)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "relops", "audit", "audit.jsonl")


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["current_run"]:
            return self._current_run(args)
        files = self._files(args)
        if isinstance(files, str):
            return {"failed": True, "changed": False, "msg": files}
        try:
            hmac_key = load_hmac_key(args.get("hmac_key"), args.get("hmac_key_file"))
            public_keys = load_public_keys(args["public_keys"])
        except AuditKeyError as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}
        if args["max_problems"] < 1:
            return {
                "failed": True,
                "changed": False,
                "msg": "max_problems %r must be at least 1" % args["max_problems"],
            }
        anchor = args.get("anchor")
        if args.get("anchor_from"):
            if anchor:
                return {
                    "failed": True,
                    "changed": False,
                    "msg": "anchor and anchor_from both given; give one: anchor (a seq and head you kept)"
                    " or anchor_from (a sink's export)",
                }
            try:
                anchor = anchor_from_sink(args["anchor_from"], public_keys)
            except AnchorError as exc:
                return {"failed": True, "changed": False, "msg": str(exc)}
        extra: Dict[str, Any] = {}
        ledger_anchors, anchors_note = self._ledger_anchors(args, files)
        with tempfile.TemporaryDirectory(prefix="relops-audit-verify-") as workdir:
            gathered = self._archived(args, workdir)
            if isinstance(gathered, str):
                return {"failed": True, "changed": False, "msg": gathered}
            report = verify_trail(
                gathered.paths if gathered is not None else files,
                hmac_key,
                public_keys,
                anchor,
                args["max_problems"],
                ledger_anchors,
            )
            if gathered is not None:
                extra = apply(report, gathered)
        if report.ledger_anchors is None:
            report.ledger_anchors = anchors_note
        result = report.as_dict()
        result.update(extra)
        result.update(
            changed=False, verified=is_verified(report), msg=_summary(report), relops_audit=_audit_event(report)
        )
        if not report.ok and args["fail_on_problem"]:
            result["failed"] = True
        return result

    def _archived(self, args: Dict[str, Any], workdir: str) -> Union[Optional[ArchivedTrail], str]:
        """With archived=true: the trail laid out with the segments the ledger's archive index holds."""
        if not args["archived"]:
            return None
        if args.get("files"):
            return "archived=true verifies a trail by its path (the archive index names segments by it); not with files"
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            return "archived=true reads the archive index, but there is no ledger at the task's ledger_url"
        with ledger:
            rows = ledger.archived_items(kind="audit")
        return gather(args.get("path") or default_trail_path(), rows, workdir)

    def _current_run(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """The gates' "audit required" check, for this run and this task."""
        try:
            hmac_key = load_hmac_key(args.get("hmac_key"), args.get("hmac_key_file"))
            public_keys = load_public_keys(args["public_keys"])
        except AuditKeyError as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}
        ledger = self.open_task_ledger_readonly(args)
        try:
            answer = check_audit_ready_for_task(self._task, hmac_key, public_keys, ledger, args.get("path"))
        finally:
            if ledger is not None:
                ledger.close()
        result = {"changed": False, "ok": answer.ready, "msg": answer.reason, "current_run": answer.as_dict()}
        if not answer.ready and args["fail_on_problem"]:
            result["failed"] = True
        return result

    def _ledger_anchors(self, args: Dict[str, Any], files: List[str]) -> Tuple[Optional[List[Anchor]], Dict[str, Any]]:
        """The trail's checkpoint anchors from the ledger (none when switched off, or no ledger holds any)."""
        trail = os.path.abspath(
            args.get("anchor_trail") or args.get("path") or (files[-1] if args.get("files") else default_trail_path())
        )
        if not args["ledger_anchors"]:
            return None, {"anchors": 0, "trail": trail, "note": "not checked: ledger_anchors=false"}
        ledger = self.open_task_ledger_readonly(args, allow_older=True)
        if ledger is None:
            return None, {"anchors": 0, "trail": trail, "note": "no ledger at the task's ledger_url"}
        with ledger:
            try:
                anchors = AnchorStore(ledger).of_trail(trail)
            except LedgerError:
                return None, {"anchors": 0, "trail": trail, "note": "%s predates anchors" % ledger.backend.description}
        note = {"anchors": 0, "trail": trail, "note": "%s holds no anchors of this trail" % ledger.backend.description}
        return anchors or None, note

    @staticmethod
    def _files(args: Dict[str, Any]) -> Union[List[str], str]:
        if args.get("files") and args.get("path"):
            return "give either path (a trail, rotated files found beside it) or files (an explicit list), not both"
        if args.get("files"):
            directories = [name for name in args["files"] if os.path.isdir(name)]
            if directories:
                return (
                    "%s in files is a directory, not a trail file; list the trail's files (audit.jsonl, "
                    "audit.jsonl.1, ...) or give the trail file as path" % ", ".join(directories)
                )
            missing = [name for name in args["files"] if not os.path.isfile(name)]
            if missing:
                return "trail file(s) %s do not exist; check files" % ", ".join(missing)
            return list(args["files"])
        path = args.get("path") or default_trail_path()
        if os.path.isdir(path):
            return "path %s is a directory, not an audit trail; set path to the trail file itself (e.g. %s)" % (
                path,
                os.path.join(path, "audit.jsonl"),
            )
        files = trail_files(path)
        if not files:
            return "no audit trail at %s (nor rotated files beside it); set path to the callback's trail" % path
        return files


def is_verified(report: Report) -> bool:
    """A trail is verified only when a key was checked: without one, anyone could have rebuilt the chain."""
    return report.ok and (report.macs_checked or report.signatures_checked)


def _summary(report: Report) -> str:
    problem = report.first_problem
    if problem is None:
        if is_verified(report):
            head = "audit trail verified"
            unchecked = [
                what
                for what, checked in (
                    ("signatures not checked: no public_keys given", report.signatures_checked),
                    ("MACs not checked: no HMAC key given", report.macs_checked),
                )
                if not checked
            ]
        else:
            head = "audit trail chain only, not verified (no public_keys or HMAC key given)"
            unchecked = []
        anchors = report.ledger_anchors or {}
        if anchors.get("checked"):
            unchecked.append("%d ledger anchor(s) held" % anchors["held"])
        else:
            unchecked.append("no ledger anchors checked: %s" % anchors.get("note", "none"))
        return "%s: %d line(s) in %d file(s), seq %s..%s, %d run(s), %d checkpoint(s) (%s)" % (
            head,
            report.lines,
            len(report.files),
            report.first_seq,
            report.last_seq,
            len(report.runs),
            report.checkpoints,
            "; ".join(unchecked),
        )
    return "audit trail does NOT verify: %s at %s line %d (seq %s): %s" % (
        problem.reason,
        problem.file,
        problem.line,
        problem.seq,
        problem.detail,
    )


def _audit_event(report: Report) -> Dict[str, Any]:
    """What the verification itself adds to the trail (through the audit callback)."""
    problem = report.first_problem
    return {
        "kind": "trail_verified",
        "ok": report.ok,
        "verified": is_verified(report),
        "files": report.files,
        "last_seq": report.last_seq,
        "head": report.head,
        "first_problem": problem.as_dict() if problem else None,
    }
