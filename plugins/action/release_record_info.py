# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.release_record_info (documentation in plugins/modules/release_record_info.py)."""

from __future__ import annotations

from typing import Any, Dict, List

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.release_record import (
    STAGES,
    ReleaseRecordError,
    ReleaseRecordStore,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "release_id": {"type": "str"},
    "service": {"type": "str"},
    "environment": {"type": "str"},
    "limit": {"type": "int", "default": 20},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        if args["limit"] < 1:
            raise ReleaseRecordError("limit %r must be at least 1; use e.g. limit: 20" % args["limit"])
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            if args.get("release_id"):
                raise ReleaseRecordError("release %s: there is no ledger yet" % args["release_id"])
            return {"changed": False, "releases": []}
        with ledger:
            store = ReleaseRecordStore(ledger)
            if args.get("release_id"):
                record = store.get_record(args["release_id"])
                if record is None:
                    raise ReleaseRecordError(
                        "release %s has no record in the ledger; list them with service/environment"
                        % args["release_id"]
                    )
                return {
                    "changed": False,
                    "record": record,
                    "missing_stages": missing_stages(record),
                    "releases": [record],
                }
            rows = store.list_records(args.get("service"), args.get("environment"), args["limit"])
        return {"changed": False, "releases": rows}


def missing_stages(record: Dict[str, Any]) -> List[str]:
    """Stages the record has no entry for (a release that skipped a stage shows it here)."""
    return [stage for stage in STAGES if stage not in record["stages"]]
