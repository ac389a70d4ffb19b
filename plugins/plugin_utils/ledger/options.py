# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger option every ledger-backed plugin takes, specified once.

The matching documentation is the ``relops.release.ledger`` doc fragment.
"""

from __future__ import annotations

from typing import Any, Dict

LEDGER_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "ledger_url": {"type": "str", "required": False},
}
