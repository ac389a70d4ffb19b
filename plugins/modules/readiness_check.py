# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: readiness_check
short_description: Pre-deployment readiness review with a pass/fail checklist
version_added: 0.1.0
description:
  - Reviews whether a release is ready for its target environment and returns one checklist item per question.
  - C(rollback_plan) a rollback plan is declared; C(rollback_rehearsed) the ledger shows this version rolled back
    in a lower environment (policy C(gate.lower_environments)). Declaring O(rollback.not_needed) with a reason
    passes both.
  - C(communication) a communication schedule is declared, with an announcement before the planned start.
  - C(on_call) the on-call roster file covers the whole planned window; gaps are listed.
  - C(runbook) a runbook reference is declared.
  - C(dependencies) every declared dependency is deployed (at the declared version or later) in the target
    environment, according to the ledger.
  - The options may also come from the C(readiness) section of a release manifest file (O(manifest)); options
    given to the task win.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  service:
    description: The service being released.
    type: str
    required: true
  version:
    description: The version being released.
    type: str
    required: true
  environment:
    description: The target environment.
    type: str
    default: production
  planned_start:
    description: Start of the planned window (RFC 3339); needed for the roster and communication checks.
    type: str
  planned_end:
    description: End of the planned window (RFC 3339).
    type: str
  manifest:
    description: A YAML or JSON file whose C(readiness) section declares the items below.
    type: path
  rollback:
    description: The rollback plan.
    type: dict
    suboptions:
      plan:
        description: Reference to the rollback plan (a link or a playbook).
        type: str
      not_needed:
        description: Why this release needs no rollback (for example an additive, flag-guarded change).
        type: str
  communication:
    description: The communication schedule, a list of C({at, channel, audience}) with RFC 3339 times.
    type: list
    elements: dict
  roster:
    description: On-call roster file, YAML C(shifts) list of C({who, start, end}) with RFC 3339 times.
    type: path
  runbook:
    description: Reference to the runbook.
    type: str
  dependencies:
    description: Services that must be deployed in the target environment first, a list of C({service, version}).
    type: list
    elements: dict
  lower_environments:
    description: Where a rollback rehearsal counts. Default is the policy's C(gate.lower_environments).
    type: list
    elements: str
  policy:
    description: Path of the policy file. Default is the policy shipped with the collection.
    type: path
  fail_on_failure:
    description: Fail the task when an item fails. Set V(false) to branch on RV(passed) instead.
    type: bool
    default: true
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reads only; the answer is the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: relops.release.change_gate
"""

EXAMPLES = r"""
- name: Review readiness for production
  relops.release.readiness_check:
    service: payments-api
    version: 2.4.0
    environment: production
    planned_start: "2026-12-01T20:00:00Z"
    planned_end: "2026-12-01T22:00:00Z"
    rollback:
      plan: https://runbooks.example.com/payments/rollback
    communication:
      - {at: "2026-12-01T12:00:00Z", channel: "#payments-releases", audience: support}
    roster: oncall/payments.yml
    runbook: https://runbooks.example.com/payments
    dependencies:
      - {service: ledger-api, version: 3.1.0}
  register: readiness
"""

RETURN = r"""
passed:
  description: Whether every item passed.
  returned: always
  type: bool
checklist:
  description: One entry per item, with C(item), C(passed) and C(detail); C(on_call) also lists C(gaps).
  returned: always
  type: list
  elements: dict
failed_items:
  description: The names of the items that failed.
  returned: always
  type: list
  elements: str
"""
