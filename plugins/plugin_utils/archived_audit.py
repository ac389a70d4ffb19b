# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifying an audit trail across segments relops.release.archive moved out.

The archive index in the ledger names each archived segment's original path
(``<trail>.<UTC time>``), where it lives now (a file, or a member of a
.tar.gz/.tar.zst), its sha256 and its first and last seq. The segments are
put back in chain order among the files still beside the trail (by the time
in their names; the live file last) and the whole chain is verified as one:
the live file's first line must link to the last line of the archived
segment before it. A segment whose bytes differ from the index, or that is
missing, is a problem naming the archive file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from ansible_collections.relops.release.plugins.module_utils.digests import file_digest
from ansible_collections.relops.release.plugins.plugin_utils.archive_files import extract_one
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import trail_files
from ansible_collections.relops.release.plugins.plugin_utils.audit.verify import Problem, Report
from ansible_collections.relops.release.plugins.plugin_utils.retention import RetentionError, rotated_name


@dataclass
class ArchivedTrail:
    """The trail's files in chain order (local paths), their shown names, and what the archive check found."""

    paths: List[str] = field(default_factory=list)
    names: Dict[str, str] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)
    segments: List[Dict[str, Any]] = field(default_factory=list)


def segments_of(trail: str, rows: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    """The archive index rows that are rotated segments of this trail."""
    path = os.path.abspath(trail)
    return [
        row
        for row in rows
        if row["kind"] == "audit"
        and os.path.dirname(row["original_path"]) == os.path.dirname(path)
        and os.path.basename(row["original_path"]).startswith(os.path.basename(path) + ".")
        and rotated_name(row["original_path"])
    ]


def gather(trail: str, rows: Sequence[Mapping[str, Any]], workdir: str) -> ArchivedTrail:
    """Lay out the trail with its archived segments; compressed ones are extracted into ``workdir``."""
    gathered = ArchivedTrail()
    ordered: List[Tuple[Tuple[int, str], str]] = []
    path = os.path.abspath(trail)
    for name in trail_files(path):
        ordered.append(((1, "") if name == path else (0, os.path.basename(name)), name))
    for row in segments_of(trail, rows):
        local = _materialise(row, workdir, gathered)
        if local is not None:
            ordered.append(((0, os.path.basename(row["original_path"])), local))
    ordered.sort()
    gathered.paths = [local for _key, local in ordered]
    return gathered


def _materialise(row: Mapping[str, Any], workdir: str, gathered: ArchivedTrail) -> Any:
    shown = row["archive_path"] + (":" + row["member"] if row.get("member") else "")
    segment = {
        "archive_id": row["archive_id"],
        "original_path": row["original_path"],
        "archive_path": shown,
        "first_seq": row["first_seq"],
        "last_seq": row["last_seq"],
        "sha256_ok": False,
    }
    gathered.segments.append(segment)
    if not os.path.exists(row["archive_path"]):
        gathered.problems.append(
            Problem(
                "removed",
                shown,
                0,
                row["first_seq"],
                "archived segment (seq %s..%s, archive id %s) is missing from the archive"
                % (row["first_seq"], row["last_seq"], row["archive_id"]),
                position=-1,
            )
        )
        return None
    if row.get("member"):
        local = os.path.join(workdir, "%s-%s" % (row["archive_id"], row["member"]))
        try:
            actual = extract_one(row, local)
        except RetentionError as exc:
            gathered.problems.append(Problem("removed", shown, 0, row["first_seq"], str(exc), position=-1))
            return None
    else:
        local = row["archive_path"]
        actual = file_digest(local)[0]
    gathered.names[local] = shown
    segment["sha256_ok"] = actual == row["sha256"]
    if actual != row["sha256"]:
        gathered.problems.append(
            Problem(
                "edited",
                shown,
                0,
                row["first_seq"],
                "archived segment's sha256 is %s, the archive index recorded %s: it changed after archiving"
                % (actual, row["sha256"]),
                position=-1,
            )
        )
    return local


def apply(report: Report, gathered: ArchivedTrail) -> Dict[str, Any]:
    """Name archived files as the archive holds them, add the archive's problems; return the result keys to add."""
    for problem in report.problems:
        problem.file = _rename(problem.file, gathered.names)
        problem.detail = _rename(problem.detail, gathered.names)
    report.files = [gathered.names.get(name, name) for name in report.files]
    report.problems[:0] = gathered.problems
    report.ok = not report.problems
    return {"archived_segments": gathered.segments}


def _rename(text: str, names: Mapping[str, str]) -> str:
    for local, shown in names.items():
        text = text.replace(local, shown)
    return text
