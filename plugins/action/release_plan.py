# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.release_plan (documentation in plugins/modules/release_plan.py)."""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, List, Optional

from ansible.errors import AnsibleError

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.calendar import CalendarError, load_windows
from ansible_collections.relops.release.plugins.plugin_utils.itsm.action import ITSM_ARGUMENT_SPEC, ItsmActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.planning.analysis import (
    SEVERITIES,
    Analysis,
    CalendarCheck,
    analyse,
    make_calendar_check,
)
from ansible_collections.relops.release.plugins.plugin_utils.planning.cmdb import related_cis
from ansible_collections.relops.release.plugins.plugin_utils.planning.export import to_html, to_ical, to_markdown
from ansible_collections.relops.release.plugins.plugin_utils.planning.files import write_if_changed
from ansible_collections.relops.release.plugins.plugin_utils.planning.plan import Plan, PlanError, load_plan, parse_when

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "src": {"type": "path"},
    "plan": {"type": "dict"},
    "as_of": {"type": "str"},
    "vendor_moves": {"type": "list", "elements": "dict", "default": []},
    "ical_dest": {"type": "path"},
    "markdown_dest": {"type": "path"},
    "html_dest": {"type": "path"},
    "fail_on": {"type": "str", "choices": ["error", "warning", "never"], "default": "never"},
    **ITSM_ARGUMENT_SPEC,
}


class ActionModule(ItsmActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        try:
            return self._plan_review(args)
        except PlanError as exc:
            raise LedgerError(str(exc)) from None

    def _plan_review(self, args: Dict[str, Any]) -> Dict[str, Any]:
        document, base_dir = self._read_plan(args)
        plan = load_plan(document)
        as_of = parse_when(args["as_of"], "as_of")[0] if args.get("as_of") else _today()
        related = self._related(plan, args)
        analysis = analyse(
            plan,
            related=related,
            as_of=as_of,
            vendor_moves=args["vendor_moves"],
            calendar_check=self._calendar_check(plan, base_dir, args),
        )
        written, diffs = self._export(analysis, as_of, args)
        result: Dict[str, Any] = {"changed": bool(written), "exports_written": written, **analysis.as_dict()}
        if diffs:
            result["diff"] = diffs
        self.audit(
            "release_plan",
            plan=plan.name,
            releases=len(plan.releases),
            counts=analysis.counts(),
            moves=[move.release for move in analysis.moves],
        )
        self._fail_on(analysis, args["fail_on"], result)
        return result

    def _read_plan(self, args: Dict[str, Any]) -> "tuple[Any, str]":
        if bool(args.get("src")) == bool(args.get("plan")):
            raise PlanError("give the plan as src (a YAML file) or as plan (a mapping), exactly one of them")
        if args.get("plan"):
            return args["plan"], self.playbook_dir()
        path = self._find_needle("files", args["src"])
        try:
            return self._loader.load_from_file(path), self.playbook_dir()
        except AnsibleError as exc:
            raise PlanError("release plan %s is not readable YAML: %s" % (path, exc)) from None

    def _related(self, plan: Plan, args: Dict[str, Any]) -> Dict[str, Any]:
        if not any(release.cis for release in plan.releases):
            return {}
        with self.itsm_backend(args, write=False) as backend:
            return related_cis(plan, backend)

    def _calendar_check(self, plan: Plan, base_dir: str, args: Dict[str, Any]) -> Optional[CalendarCheck]:
        """Read the plan's governance calendars once; the check asks them about each release's window."""
        if not plan.calendars:
            return None
        try:
            if any(source.get("type") == "servicenow" for source in plan.calendars):
                with self.itsm_backend(args, write=False) as backend:
                    windows = load_windows(plan.calendars, plan.default_tz, base_dir, itsm=backend)
            else:
                windows = load_windows(plan.calendars, plan.default_tz, base_dir)
        except CalendarError as exc:
            raise PlanError("plan.calendars: %s" % exc) from None
        return make_calendar_check(windows)

    def _export(
        self, analysis: Analysis, as_of: datetime.datetime, args: Dict[str, Any]
    ) -> "tuple[List[str], List[Dict[str, Any]]]":
        outputs: Dict[str, Callable[[], bytes]] = {
            "ical_dest": lambda: to_ical(analysis, as_of),
            "markdown_dest": lambda: to_markdown(analysis).encode("utf-8"),
            "html_dest": lambda: to_html(analysis).encode("utf-8"),
        }
        written: List[str] = []
        diffs: List[Dict[str, Any]] = []
        for option, render in outputs.items():
            path = self.optional_local_path(args.get(option))
            if not path:
                continue
            content = render()
            changed, before = write_if_changed(path, content, self.check_mode)
            if changed:
                written.append(path)
                diffs.append(
                    {
                        "before_header": path,
                        "after_header": path,
                        "before": (before or b"").decode("utf-8", "replace"),
                        "after": content.decode("utf-8"),
                    }
                )
        return written, diffs

    @staticmethod
    def _fail_on(analysis: Analysis, fail_on: str, result: Dict[str, Any]) -> None:
        if fail_on == "never":
            return
        failing = SEVERITIES[: SEVERITIES.index(fail_on) + 1]
        bad = [finding for finding in analysis.findings if finding.severity in failing]
        if bad:
            result["failed"] = True
            result["msg"] = "release plan has %d finding(s) at or above %s: %s" % (
                len(bad),
                fail_on,
                "; ".join(finding.message for finding in bad[:5]) + ("; ..." if len(bad) > 5 else ""),
            )


def _today() -> datetime.datetime:
    """Midnight UTC today: the default reference date, stable within a day so exports stay idempotent."""
    now = utc_now()
    return datetime.datetime(now.year, now.month, now.day, tzinfo=datetime.timezone.utc)
