# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: exemption
short_description: Create, list and revoke change-governance exemptions in the release ledger
version_added: 0.1.0
description:
  - An exemption waives one change-gate check (O(rule)) for a team or a service until it expires or is revoked.
    M(relops.release.change_gate) honours an active exemption and records each use; an expired one is ignored
    and the decision says so.
  - Every exemption names its approver, its reason and its expiry; the approver must not be the requester,
    and the policy bounds how long an exemption may last and which checks it may waive.
  - Exemptions are immutable; to change one, revoke it and create another under a new name.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  state:
    description:
      - V(present) creates the exemption (unchanged when it exists with the same values).
      - V(revoked) revokes it. V(list) returns the exemptions matching O(rule), O(service) and O(team).
    type: str
    default: present
    choices: [present, revoked, list]
  name:
    description: The exemption's unique name. Required unless O(state=list).
    type: str
  rule:
    description: The gate check the exemption waives. Required for O(state=present).
    type: str
    choices: [blackout, stabilization, readiness, conflict, maintenance_window]
  team:
    description: The team the exemption covers. Give O(team), O(service) or both.
    type: str
  service:
    description: The service the exemption covers.
    type: str
  approver:
    description: Who approved the exemption. Required for O(state=present); must not be the requester.
    type: str
  reason:
    description: Why the exemption is needed (for O(state=revoked), why it is revoked).
    type: str
  expires_at:
    description: When the exemption ends, RFC 3339 (C(2026-12-01T00:00:00Z)). Required for O(state=present).
    type: str
  requested_by:
    description: Who asks for the exemption. Default is the user running the play.
    type: str
  include_inactive:
    description: With O(state=list), also list expired and revoked exemptions.
    type: bool
    default: false
  policy:
    description: The policy whose C(exemptions) settings (longest duration, exemptable checks) apply.
    type: path
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing.
  diff_mode:
    support: full
seealso:
  - module: relops.release.change_gate
"""

EXAMPLES = r"""
- name: Let the payments hotfix through this week's freeze
  relops.release.exemption:
    name: payments-freeze-hotfix-4711
    service: payments-api
    rule: blackout
    approver: head.of.operations
    reason: INC4711 card payments failing; fix ready
    expires_at: "{{ '%Y-%m-%dT%H:%M:%SZ' | strftime(now().timestamp() | int + 3 * 86400, utc=true) }}"  # in three days

- name: List the active exemptions of the service
  relops.release.exemption:
    state: list
    service: payments-api
  register: active

- name: Revoke it once deployed
  relops.release.exemption:
    name: payments-freeze-hotfix-4711
    state: revoked
    reason: hotfix deployed
"""

RETURN = r"""
exemption:
  description: The exemption as stored (with C(status) V(active), V(expired) or V(revoked)).
  returned: unless O(state=list)
  type: dict
exemptions:
  description: The matching exemptions, newest first, each with C(status) and C(uses).
  returned: when O(state=list)
  type: list
  elements: dict
count:
  description: How many exemptions matched.
  returned: when O(state=list)
  type: int
"""
