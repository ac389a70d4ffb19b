# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which changes affected a CI, read from the local ITSM backend's change events (schema V2 tables).

ServiceNow records a change's affected CIs as ``task_ci`` rows, and a CI's
changes are read back through them. The ledger's equivalent is the change's
``cis`` list with a ``cis_added`` event per addition; the events give the order
in which changes touched a CI, so the newest is the CI's last change.
"""

from __future__ import annotations

from typing import List

# store.py builds Ledger from this mixin; the package imports store first, so this import finds it.
from . import store
from .backends import Backend, Row


class CiChangeStore:
    """A mixin of Ledger: read the changes that affected a CI."""

    # Provided by Ledger, which this class is mixed into.
    backend: Backend

    def itsm_changes_for_ci(self, ci_sys_id: str, limit: int = 10) -> List[Row]:
        """Changes whose affected CIs include the CI, the one that added it most recently first."""
        # sys_ids are hexadecimal, so the quoted id cannot contain LIKE wildcards.
        pattern = '%%"%s"%%' % ci_sys_id
        with self.backend.transaction(write=False) as cursor:
            events = cursor.all(
                "SELECT change_sys_id, MAX(id) AS latest FROM itsm_change_events"
                " WHERE event = 'cis_added' AND detail LIKE ? GROUP BY change_sys_id ORDER BY latest DESC LIMIT ?",
                (pattern, limit),
            )
            changes = [
                cursor.one("SELECT * FROM itsm_changes WHERE sys_id = ?", (event["change_sys_id"],)) for event in events
            ]
        return [store._decode_change(change) for change in changes if change is not None]
