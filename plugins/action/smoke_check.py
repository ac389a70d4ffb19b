# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.smoke_check (documentation and target side in plugins/modules/smoke_check.py)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List

from ansible_collections.relops.release.plugins.module_utils.smoke import (
    SMOKE_ARGUMENT_SPEC,
    SmokeCheckError,
    junit_xml,
    normalize_checks,
    run_checks,
    summary_table,
)
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase


class ActionModule(RelopsActionBase):
    argument_spec = SMOKE_ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["concurrency"] < 1:
            return {
                "failed": True,
                "msg": "concurrency %r must be at least 1; use 1 to run checks one by one" % args["concurrency"],
            }
        try:
            checks = normalize_checks(args["checks"], args["base_url"], args.get("script_dir"))
        except SmokeCheckError as exc:
            return {"failed": True, "msg": str(exc)}
        if args["run_from"] == "targets":
            outcome = self._run_on_target(args)
            if outcome.get("failed") and "results" not in outcome:
                return outcome
            results: List[Dict[str, Any]] = outcome["results"]
        else:
            results = run_checks(checks, args["concurrency"], skip_commands=self.check_mode)
        host = str(self.task_var("inventory_hostname", ""))
        for result in results:
            result["host"] = host
        return self._report(args, results)

    def _run_on_target(self, args: Dict[str, Any]) -> Dict[str, Any]:
        module_args = {
            "checks": args["checks"],
            "concurrency": args["concurrency"],
            "run_from": "targets",
            "base_url": args["base_url"],
            "script_dir": args.get("script_dir"),
        }
        outcome: Dict[str, Any] = self._execute_module(
            module_name="relops.release.smoke_check", module_args=module_args, task_vars=self.task_vars
        )
        return outcome

    def _report(self, args: Dict[str, Any], results: List[Dict[str, Any]]) -> Dict[str, Any]:
        failed = [result["name"] for result in results if not result["passed"]]
        table = summary_table(results, host=str(self.task_var("inventory_hostname", "")))
        report: Dict[str, Any] = {
            "changed": False,
            "passed": not failed,
            "failed_checks": failed,
            "results": results,
            "summary": table,
        }
        self.audit(
            "smoke_checks",
            suite=args["suite_name"],
            passed=not failed,
            checks=[
                {key: result.get(key) for key in ("name", "type", "target", "passed", "failures", "attempts")}
                for result in results
            ],
        )
        if args["junit_path"]:
            write_atomically(args["junit_path"], junit_xml(results, args["suite_name"]))
            report["junit_path"] = args["junit_path"]
        if failed:
            report["failed"] = True
            report["msg"] = "%d of %d smoke checks failed (%s):\n%s" % (
                len(failed),
                len(results),
                ", ".join(failed),
                "\n".join(table),
            )
        else:
            report["msg"] = "all %d smoke checks passed" % len(results)
        return report


def write_atomically(path: str, text: str) -> None:
    """Replace the file in one step, so a reader never sees half a report."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
