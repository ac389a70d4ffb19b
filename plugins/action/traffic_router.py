# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for relops.release.traffic_router: the module runs on the target, behind the release permit check
(plugins/plugin_utils/release_record/guard.py; docs/governance.md, "What is enforced, and where")."""

from __future__ import annotations

from ansible_collections.relops.release.plugins.plugin_utils.release_record.guard import PermitGuardedAction


class ActionModule(PermitGuardedAction):
    """Switching traffic changes what users reach: a permit is needed for every state but query."""
