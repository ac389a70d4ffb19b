# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flag changes pass the change gate like deployments.

The task hands over the result of ``relops.release.change_gate`` (a decision record, DESIGN section 5)
as ``gate``. A flag is written only when that decision is ``allow`` and recent; without one the
task refuses, unless the play says ``require_gate: false`` (for example in a test environment).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp, utc_now

from .flagd import FlagError


def require_allow(gate: Optional[Mapping[str, Any]], required: bool, max_age: int, what: str) -> None:
    """Raise FlagError unless the gate decision lets this change through."""
    if gate is None:
        if required:
            raise FlagError(
                "%s would change, and flag changes pass the change gate: register the result of"
                " relops.release.change_gate and pass it as gate, or set require_gate: false" % what
            )
        return
    decision = gate.get("decision")
    if decision not in ("allow", "deny", "wait"):
        raise FlagError(
            "gate has no decision (got %r); pass the registered result of relops.release.change_gate" % decision
        )
    if decision != "allow":
        reasons = "; ".join(str(reason) for reason in gate.get("reasons", [])) or "no reasons given"
        raise FlagError("%s: the change gate decided %s (%s); nothing was changed" % (what, decision, reasons))
    decided_at = gate.get("decided_at")
    if not decided_at:
        raise FlagError("gate has no decided_at; pass the registered result of relops.release.change_gate")
    try:
        age = (utc_now() - parse_timestamp(str(decided_at))).total_seconds()
    except ValueError as exc:
        raise FlagError("gate decided_at: %s" % exc) from None
    if age > max_age:
        raise FlagError(
            "%s: the gate decision from %s is %d seconds old, more than gate_max_age %d; ask the change gate again"
            % (what, decided_at, age, max_age)
        )
