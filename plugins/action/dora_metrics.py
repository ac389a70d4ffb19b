# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.dora_metrics (documentation in plugins/modules/dora_metrics.py)."""

from __future__ import annotations

import os
from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.metrics.dora import (
    GRANULARITIES,
    SOURCES,
    WINDOWS,
    MetricsRequest,
    compute,
    resolve_window,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "environment": {"type": "str", "default": "production"},
    "service": {"type": "str"},
    "team": {"type": "str"},
    "window": {"type": "str", "choices": list(WINDOWS)},
    "start": {"type": "str"},
    "end": {"type": "str"},
    "timezone": {"type": "str", "default": "UTC"},
    "granularity": {"type": "str", "default": "week", "choices": list(GRANULARITIES)},
    "group_by": {"type": "str", "choices": ["service", "team"]},
    "link_window_hours": {"type": "int", "default": 24},
    "repository": {"type": "path"},
    "source": {"type": "str", "default": "auto", "choices": list(SOURCES)},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["window"] and (args["start"] or args["end"]):
            raise LedgerError("give either window (%s) or start and end dates, not both" % args["window"])
        if args["link_window_hours"] < 0:
            raise LedgerError("link_window_hours %d is negative; give 0 or more" % args["link_window_hours"])
        if args["repository"] and not os.path.isdir(args["repository"]):
            raise LedgerError(
                "repository %s is not a directory on the controller; give a git checkout" % args["repository"]
            )
        start, end = resolve_window(args["window"], args["start"], args["end"], args["timezone"])
        request = MetricsRequest(
            environment=args["environment"],
            start=start,
            end=end,
            timezone=args["timezone"],
            granularity=args["granularity"],
            link_window_seconds=args["link_window_hours"] * 3600,
            service=args["service"],
            team=args["team"],
            group_by=args["group_by"],
            repository=args["repository"],
            source=args["source"],
        )
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            raise LedgerError("there is no ledger yet at the task's ledger_url; record deployments first")
        with ledger:
            metrics = compute(ledger, request)
        return {"changed": False, "metrics": metrics}
