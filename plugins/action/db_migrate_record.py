# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.db_migrate_record (documentation in plugins/modules/db_migrate_record.py)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.relops.release.plugins.module_utils.url_secrets import redact_url
from ansible_collections.relops.release.plugins.plugin_utils.action_base import RelopsActionBase
from ansible_collections.relops.release.plugins.plugin_utils.ledger.options import LEDGER_ARGUMENT_SPEC

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "service": {"type": "str", "required": True},
    "environment": {"type": "str", "required": True},
    "release": {"type": "str", "required": True},
    "phase": {"type": "str", "default": "all", "choices": ["all", "expand", "contract", "undo"]},
    "db_url": {"type": "str", "required": True},
    "version_before": {"type": "str"},
    "version_after": {"type": "str"},
    "applied": {"type": "list", "elements": "str", "default": []},
    **LEDGER_ARGUMENT_SPEC,
}


class ActionModule(RelopsActionBase):
    argument_spec = ARGUMENT_SPEC

    def execute(self, args: Dict[str, Any]) -> Dict[str, Any]:
        key = (args["service"], args["environment"], args["release"], args["phase"], redact_url(args["db_url"]))
        after = _blank_to_none(args.get("version_after"))
        if self.check_mode:
            before = self._read_latest(args, key)
            changed = before is None or (before["version_after"] != after and bool(args["applied"]))
            record = before if not changed else None
        else:
            with self.open_task_ledger(args) as ledger:
                before = ledger.latest_schema_migration(*key)
                record, changed = ledger.record_schema_migration(
                    self.actor,
                    *key,
                    version_before=_blank_to_none(args.get("version_before")),
                    version_after=after,
                    applied=args["applied"],
                )
        result: Dict[str, Any] = {"changed": changed, "record": record}
        if self.diff_mode:
            result["diff"] = {
                "before": "schema_version: %s\n" % (before["version_after"] if before else "(not recorded)"),
                "after": "schema_version: %s\n" % after,
                "before_header": "%s/%s release %s (%s)" % key[:4],
                "after_header": "%s/%s release %s (%s)" % key[:4],
            }
        return result

    def _read_latest(self, args: Dict[str, Any], key: "tuple[str, str, str, str, str]") -> Optional[Dict[str, Any]]:
        ledger = self.open_task_ledger_readonly(args)
        if ledger is None:
            return None
        with ledger:
            return ledger.latest_schema_migration(*key)


def _blank_to_none(value: Optional[str]) -> Optional[str]:
    # A register of a first migration has version_before null, which templates into "" or "None".
    return None if value in (None, "", "None") else value
