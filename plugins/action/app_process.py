# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.app_process: the module runs on the target, behind the release permit check
(plugins/plugin_utils/release_record/guard.py; docs/governance.md, "What is enforced, and where")."""

from __future__ import annotations

from ansible_collections.relops.release.plugins.plugin_utils.release_record.guard import PermitGuardedAction


class ActionModule(PermitGuardedAction):
    # Starting a process (a new version) changes the host; stopping or removing one does not need a permit.
    reading_states = ("query", "stopped", "absent")
    default_state = "started"
