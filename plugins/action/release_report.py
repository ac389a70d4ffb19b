# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.release_report (documentation in plugins/modules/release_report.py)."""

from __future__ import annotations

import datetime
import os
import tempfile
from typing import Any, Dict, List, Optional

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (
    GRANULARITIES,
    WINDOWS,
    MetricsRequest,
    resolve_window,
)
from ansible_collections.relops.release.plugins.plugin_utils.metrics.render import FORMATS, render
from ansible_collections.relops.release.plugins.plugin_utils.metrics.report import REPORTS, ReportInputs, build

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "dest": {"type": "path", "required": True},
    "reports": {"type": "list", "elements": "str", "choices": list(REPORTS), "default": list(REPORTS)},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": list(FORMATS)},
    "environment": {"type": "str", "default": "production"},
    "service": {"type": "str"},
    "team": {"type": "str"},
    "window": {"type": "str", "choices": list(WINDOWS)},
    "start": {"type": "str"},
    "end": {"type": "str"},
    "timezone": {"type": "str", "default": "UTC"},
    "granularity": {"type": "str", "default": "week", "choices": list(GRANULARITIES)},
    "link_window_hours": {"type": "int", "default": 24},
    "audit_path": {"type": "path"},
    "deployment_ids": {"type": "list", "elements": "int", "default": []},
    "release_ids": {"type": "list", "elements": "str", "default": []},
    "runbook_root": {"type": "path"},
    "runbook_max_age_hours": {"type": "int", "default": 48},
    "slow_task_seconds": {"type": "float", "default": 300.0},
    "exemptions": {"type": "list", "elements": "dict", "default": []},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["window"] and (args["start"] or args["end"]):
            raise LedgerError("give either window (%s) or start and end dates, not both" % args["window"])
        start, end = resolve_window(args["window"], args["start"], args["end"], args["timezone"])
        inputs = ReportInputs(
            request=MetricsRequest(
                environment=args["environment"],
                start=start,
                end=end,
                timezone=args["timezone"],
                granularity=args["granularity"],
                link_window_seconds=args["link_window_hours"] * 3600,
                service=args["service"],
                team=args["team"],
            ),
            audit_path=args["audit_path"] or _default_audit_path(),
            deployment_ids=args["deployment_ids"],
            release_ids=args["release_ids"],
            runbook_root=args["runbook_root"],
            runbook_max_age_hours=args["runbook_max_age_hours"],
            slow_task_seconds=args["slow_task_seconds"],
            exemptions=args["exemptions"],
        )
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            raise LedgerError("there is no ledger yet at the task's ledger_url; record deployments first")
        last_day = (end - datetime.timedelta(days=1)).date().isoformat()
        covers = "covering %s to %s (%s, %s)" % (
            start.date().isoformat(),
            last_day,
            args["environment"],
            args["timezone"],
        )
        documents = {}
        with ledger:
            for name in args["reports"]:
                documents[name] = build(ledger, name, inputs).as_dict(covers)
        written: List[str] = []
        files: Dict[str, Dict[str, str]] = {}
        for name, document in documents.items():
            files[name] = {}
            for fmt in args["formats"]:
                path = os.path.join(args["dest"], "%s.%s" % (name, fmt))
                files[name][fmt] = path
                if _write(path, render(document, fmt), self.check_mode):
                    written.append(path)
        result: Dict[str, Any] = {"changed": bool(written), "files": files, "written": written}
        result["reports"] = {
            name: {
                "title": d["title"],
                "sections": len(d["sections"]),
                "charts": sum(1 for s in d["sections"] if s.get("chart")),
                "tables": sum(1 for s in d["sections"] if s.get("table")),
            }
            for name, d in documents.items()
        }
        if self.diff_mode:
            result["diff"] = {"before": "", "after": "".join("%s\n" % path for path in written)}
        return result


def _default_audit_path() -> Optional[str]:
    """The audit callback's default trail, when it exists (docs/audit.md)."""
    path = os.environ.get("RELOPS_AUDIT_PATH") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "relops", "audit", "audit.jsonl"
    )
    return path if os.path.exists(path) else None


def _write(path: str, content: str, check_mode: bool) -> bool:
    """Replace a file atomically when its content differs; return whether it did (or would)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == content:
                return False
    except FileNotFoundError:
        pass
    if check_mode:
        return True
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".report-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            output.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True
