# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  permit:
    description:
      - The release permit this change runs under, the DSSE envelope M(relops.release.change_gate) returned
        as RV(relops.release.change_gate#module:permit) (a mapping or its JSON text).
      - Read only in an environment the policy marks enforced (C(environments.<name>.enforced); production in
        the default policy). The environment is the host's C(relops_environment) variable (set it in
        the inventory; the C(relops.release.release) role sets it from C(release_environment)); the policy
        is C(relops_policy), else C(release_policy), else the collection's default. There, the task is
        refused, changing nothing, unless the permit's signature verifies against the keyring in
        C(relops_permit_keyring), it names this environment and this host (C(inventory_hostname)), it is
        between its C(not_before) and C(not_after), the ledger does not list it as revoked, and, for a
        module that installs a package, it names the package's sha256 digest - or
        that package was itself released successfully to this environment (a rollback onto it, reported
        as C(permit_use=rollback)).
      - When not set, the C(relops_release_permit) variable is used; the C(relops.release.release) role sets
        it after the gate.
      - Tasks that only read (O(state=query) and the like) need no permit.
    type: raw
notes:
  - In an enforced environment the result has C(permit_id) and C(release_id), and the audit trail a
    C(permit_used) event (docs/governance.md, "What is enforced, and where").
"""
