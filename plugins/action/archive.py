# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.archive (documentation in plugins/modules/archive.py)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Sequence, Set, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.archive_files import (
    COMPRESSIONS,
    Move,
    digest_archived,
    extract_checked,
    plan_moves,
    remove_archives,
    remove_files,
    remove_originals,
    write_archives,
)
from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.retention import (
    Candidate,
    Plan,
    RetentionError,
    RetentionRefused,
    evaluate,
    find_artifacts,
    find_audit_segments,
    find_reports,
    parse_policy,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "state": {"type": "str", "choices": ["present", "restored"], "default": "present"},
    "dest": {"type": "path"},
    "compression": {"type": "str", "choices": list(COMPRESSIONS), "default": "none"},
    "artifact_dirs": {"type": "list", "elements": "path", "default": []},
    "audit_trails": {"type": "list", "elements": "path", "default": []},
    "report_dirs": {"type": "list", "elements": "path", "default": []},
    "scheme": {"type": "str", "default": "semver"},
    "policy": {
        "type": "dict",
        "default": {},
        "options": {
            "keep_last": {"type": "int", "default": 3},
            "keep_days": {"type": "int", "default": 30},
            "holds": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "service": {"type": "str"},
                    "version": {"type": "str"},
                    "path": {"type": "str"},
                    "reason": {"type": "str", "required": True},
                },
            },
        },
    },
    "restore": {"type": "list", "elements": "str", "default": []},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            if args["state"] == "restored":
                return self._restore(args)
            return self._archive(args)
        except RetentionRefused as refused:
            self.audit("archive_refused", refused=refused.refused)
            return {"failed": True, "changed": False, "refused": refused.refused, "msg": str(refused)}
        except (RetentionError, OSError) as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}

    # Archiving

    def _archive(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["restore"]:
            raise RetentionError("restore is given with state=present; set state=restored to put items back")
        if not args["dest"]:
            raise RetentionError("state=present needs dest: the archive directory to move items into")
        policy = parse_policy(args["policy"], args["scheme"])
        candidates, kept_early = self._candidates(args)
        protected = self._protected(args, candidates)
        plan = evaluate(candidates, policy, protected, utc_now())
        dest = os.path.abspath(args["dest"])
        moves = plan_moves(plan.of("archive"), dest, args["compression"])
        if moves and not self.check_mode:
            with self.open_task_ledger(args) as ledger:
                self._move(ledger, moves, args["compression"])
        result = _archive_result(plan, moves, kept_early, protected, self.check_mode)
        if self.diff_mode and moves:
            result["diff"] = _diff(moves)
        self.audit(
            "archive_run",
            state="present",
            check_mode=self.check_mode,
            archived=[
                {
                    "archive_id": move.archive_id,
                    "kind": move.decision.candidate.kind,
                    "path": move.decision.candidate.path,
                }
                for move in moves
            ],
            held=[decision.candidate.path for decision in plan.of("hold")],
            kept=len(plan.of("keep")) + len(kept_early),
        )
        return result

    def _candidates(self, args: Dict[str, Any]) -> Tuple[List[Candidate], List[Dict[str, Any]]]:
        if not (args["artifact_dirs"] or args["audit_trails"] or args["report_dirs"]):
            raise RetentionError(
                "nothing to archive from: give artifact_dirs, audit_trails and/or report_dirs (state=present)"
            )
        dest = os.path.abspath(args["dest"])
        candidates: List[Candidate] = []
        kept: List[Dict[str, Any]] = []
        for directory in args["artifact_dirs"]:
            candidates.extend(find_artifacts(os.path.abspath(directory), args["scheme"]))
        for trail in args["audit_trails"]:
            found, stays = find_audit_segments(trail)
            candidates.extend(found)
            kept.extend(stays)
        for directory in args["report_dirs"]:
            candidates.extend(find_reports(os.path.abspath(directory)))
        # Report directories are searched to any depth, so the archive must not sit anywhere inside one;
        # artifact and trail directories are read one level deep, so only the same directory clashes.
        clashes = [os.path.abspath(name) for name in args["report_dirs"] if _is_within(dest, os.path.abspath(name))]
        clashes += [
            folder
            for folder in [os.path.abspath(name) for name in args["artifact_dirs"]]
            + [os.path.dirname(os.path.abspath(name)) for name in args["audit_trails"]]
            if folder == dest
        ]
        if clashes:
            raise RetentionError(
                "dest %s lies inside the source %s; put the archive outside the directories it archives"
                % (dest, clashes[0])
            )
        return candidates, kept

    def _protected(self, args: Dict[str, Any], candidates: Sequence[Candidate]) -> List[Dict[str, Any]]:
        services = sorted({str(candidate.service) for candidate in candidates if candidate.kind == "artifact"})
        if not services:
            return []
        ledger = self.open_task_ledger_readonly(args, allow_older=True)
        if ledger is None:
            return []
        with ledger:
            return ledger.protected_releases(services)

    def _move(self, ledger: Ledger, moves: Sequence[Move], compression: str) -> None:
        write_archives(moves, compression)
        try:
            ledger.record_archived(self.actor, [row for move in moves for row in move.index_rows()])
        except BaseException:
            remove_archives(moves)
            raise
        remove_originals(moves)

    # Restoring

    def _restore(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if not args["restore"]:
            raise RetentionError("state=restored needs restore: a list of archive ids or original paths")
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            raise LedgerError("there is no ledger at the task's ledger_url, so nothing was ever archived there")
        with ledger:
            rows, already = _requested_rows(ledger, args["restore"])
        present = [row["original_path"] for row in rows if os.path.lexists(row["original_path"])]
        if present:
            raise RetentionError(
                "cannot restore over %s: a file is there already; move it aside (or archive it) first, nothing was"
                " restored" % ", ".join(present)
            )
        if self.check_mode:
            self._check_digests(rows)
        elif rows:
            self._put_back(args, rows)
        restored = [
            {key: row[key] for key in ("archive_id", "kind", "original_path", "archive_path", "member", "sha256")}
            for row in rows
        ]
        self.audit("archive_restore", check_mode=self.check_mode, restored=restored, already_restored=already)
        result: Dict[str, Any] = {
            "changed": bool(rows),
            "restored": restored,
            "already_restored": already,
            "msg": "%s %d file(s) from the archive (sha256 verified)%s"
            % (
                "would restore" if self.check_mode else "restored",
                len(rows),
                "; already restored: %s" % ", ".join(already) if already else "",
            ),
        }
        if self.diff_mode and rows:
            result["diff"] = {
                "before": "".join("%s\n" % row["archive_path"] for row in rows),
                "after": "".join("%s\n" % row["original_path"] for row in rows),
            }
        return result

    @staticmethod
    def _check_digests(rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            actual = digest_archived(row)
            if actual != row["sha256"]:
                raise RetentionError(
                    "archived file %s%s has sha256 %s, but the archive index recorded %s: it changed after archiving"
                    % (
                        row["archive_path"],
                        " member " + row["member"] if row.get("member") else "",
                        actual,
                        row["sha256"],
                    )
                )

    def _put_back(self, args: Dict[str, Any], rows: Sequence[Mapping[str, Any]]) -> None:
        temporaries = extract_checked(rows)
        try:
            with self.open_task_ledger(args) as ledger:
                ledger.mark_restored(self.actor, sorted({row["archive_id"] for row in rows}))
        except BaseException:
            remove_files(temporaries.values())
            raise
        for row in rows:
            os.replace(temporaries[int(row["id"])], row["original_path"])
            mtime = (row.get("details") or {}).get("mtime")
            if mtime:
                os.utime(row["original_path"], (mtime, mtime))
        remove_files(sorted({row["archive_path"] for row in rows}))


def _requested_rows(ledger: Ledger, requested: Sequence[str]) -> Tuple[List[Dict[str, Any]], List[str]]:
    """The index rows of every item asked for (all files of each), and the asks already restored."""
    ids: Set[str] = set()
    already: List[str] = []
    unknown: List[str] = []
    for ask in requested:
        by_id = ledger.archived_items(status=None, archive_ids=[ask])
        rows = by_id or ledger.archived_items(status=None, original_paths=[os.path.abspath(os.path.expanduser(ask))])
        live = [row for row in rows if row["status"] == "archived"]
        if live:
            ids.update(row["archive_id"] for row in live)
        elif rows:
            already.append(ask)
        else:
            unknown.append(ask)
    if unknown:
        raise RetentionError(
            "%s is not in the archive index; give an archive_id or the original path an archive run returned"
            % ", ".join(unknown)
        )
    return ledger.archived_items(status="archived", archive_ids=sorted(ids)), already


def _archive_result(
    plan: Plan,
    moves: Sequence[Move],
    kept_early: List[Dict[str, Any]],
    protected: List[Dict[str, Any]],
    check_mode: bool,
) -> Dict[str, Any]:
    held = [decision.describe() for decision in plan.of("hold")]
    kept = [decision.describe() for decision in plan.of("keep")] + kept_early
    verb = "would archive" if check_mode else "archived"
    return {
        "changed": bool(moves),
        "archived": [move.describe() for move in moves],
        "kept": kept,
        "held": held,
        "protected": protected,
        "msg": "%s %d item(s); kept %d, held %d" % (verb, len(moves), len(kept), len(held)),
    }


def _diff(moves: Sequence[Move]) -> Dict[str, str]:
    before, after = [], []
    for move in moves:
        for placed in move.files:
            before.append("%s\n" % placed.original_path)
            after.append("%s%s\n" % (placed.archive_path, " (%s)" % placed.member if placed.member else ""))
    return {"before_header": "live", "after_header": "archive", "before": "".join(before), "after": "".join(after)}


def _is_within(path: str, directory: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), directory]) == directory
