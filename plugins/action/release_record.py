# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.release_record (documentation in plugins/modules/release_record.py)."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC
from ansible_collections.relops.release.plugins.plugin_utils.release_record import (
    CHECKED_STAGES,
    STAGES,
    ReleaseRecordError,
    ReleaseRecordStore,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "release_id": {"type": "str", "required": True},
    "stage": {"type": "str", "required": True, "choices": [s for s in STAGES if s not in CHECKED_STAGES]},
    "data": {"type": "dict", "default": {}},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        release_id, stage = args["release_id"], args["stage"]
        if self.check_mode:
            ledger = self.open_task_ledger_readonly(args)
            record = ReleaseRecordStore(ledger).get_record(release_id) if ledger is not None else None
            if ledger is not None:
                ledger.close()
            if record is None:
                raise ReleaseRecordError("release %s has no record in the ledger; check the release id" % release_id)
            return {"changed": True, "release_id": release_id, "stage": stage, "record": record}
        with self.open_task_ledger(args) as ledger:
            record = ReleaseRecordStore(ledger).record_stage(self.actor, release_id, stage, args["data"])
        self.audit("release_record", release_id=release_id, stage=stage)
        return {"changed": True, "release_id": release_id, "stage": stage, "record": record}
