# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: risk_assess
short_description: Classify a change's risk, change type and approval route from a versioned policy
version_added: 0.1.0
description:
  - Collects the facts about one change and applies a change-governance policy (docs/governance.md) to them.
  - Facts are the release class; the CIs' business criticality and blast radius (CIs depending on the changed
    ones, walked upstream like M(relops.release.cmdb_impact)) from the ITSM backend; the service's recent change
    failure rate in the environment and the days since its last incident, from the release ledger; JUnit test
    results and Cobertura coverage; the size of the change (files, migrations, irreversible migrations); and
    whether the change fits the pre-approved standard-change template it claims.
  - Answers with the risk level (V(low), V(moderate), V(high), V(very_high)), the change type (V(standard),
    V(normal), V(emergency)) and the approval route (V(automatic), V(peer), V(cab)), with every rule's
    contribution, so a person can see why.
  - Pass the registered result to M(relops.release.change_gate) as its O(relops.release.change_gate#module:assessment).
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  service:
    description: The service being changed; its deployments and incidents are read from the ledger.
    type: str
    required: true
  environment:
    description: The target environment; the change failure rate is computed for it.
    type: str
    default: production
  release_class:
    description: The release class.
    type: str
    required: true
    choices: [strategic, operational, emergency]
  cis:
    description:
      - Names or sys_ids of the CIs the change touches. Empty skips the CMDB facts (counted as unknown).
      - Each must be in the CMDB (register it with M(relops.release.cmdb_ci)); an unknown CI fails the task.
      - A service's name reads its CI in O(environment) (V(<service> (<environment>\))), as
        M(relops.release.cmdb_deployment) names it, and the CI of that exact name when there is none.
    type: list
    elements: str
    default: []
  impact_depth:
    description: How many relation levels the blast radius walks.
    type: int
    default: 3
  junit:
    description: JUnit XML report files (wildcards expanded). Empty leaves the test facts unknown.
    type: list
    elements: path
    default: []
  coverage:
    description: Cobertura XML coverage reports (wildcards expanded).
    type: list
    elements: path
    default: []
  files_changed:
    description: How many files the change touches.
    type: int
  migrations:
    description: How many schema migrations the release applies.
    type: int
    default: 0
  irreversible_migrations:
    description: How many of those migrations cannot be undone.
    type: int
    default: 0
  template:
    description: The pre-approved standard-change template the change claims to fit (policy C(standard_templates)).
    type: str
  policy:
    description: Path of the policy file. Default is the policy shipped with the collection.
    type: path
  release_id:
    description:
      - The release record to write the assessment into, as its C(risk) stage, where
        M(relops.release.change_gate) reads it (RV(relops.release.artifact_verify#module:release_id)). The record
        must be of O(service) in O(environment). Nothing is written in check mode.
    type: str
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.itsm
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Reads only; the answer is the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: relops.release.change_gate
  - module: relops.release.cmdb_impact
  - module: relops.release.quality_gate
"""

EXAMPLES = r"""
- name: Assess the release (its CI must be in the CMDB first; relops.release.cmdb_ci's examples register it)
  relops.release.risk_assess:
    service: payments-api
    environment: production
    release_class: operational
    cis: [payments-api]
    junit: [reports/unit.xml, reports/integration-*.xml]
    coverage: [reports/coverage.xml]
    files_changed: 12
    migrations: 1
  register: risk

- name: Show why
  ansible.builtin.debug:
    msg: "{{ risk.risk }} risk, {{ risk.route }} approval: {{ risk.contributions | map(attribute='rule') | list }}"
"""

RETURN = r"""
recorded:
  description: Whether the assessment was written into the release record O(release_id).
  returned: when O(release_id) is given
  type: bool
risk:
  description: The risk level.
  returned: always
  type: str
  sample: moderate
score:
  description: The sum of the risk rules' points.
  returned: always
  type: float
change_type:
  description: V(standard), V(normal) or V(emergency).
  returned: always
  type: str
route:
  description: The approval route, V(automatic), V(peer) or V(cab).
  returned: always
  type: str
contributions:
  description: One entry per risk rule, with C(rule), C(fact), C(value), C(weight), C(points) and C(why).
  returned: always
  type: list
  elements: dict
floors:
  description: Floor rules that raised the level, with C(rule), C(raised_from) and C(to).
  returned: always
  type: list
  elements: dict
change_type_rule:
  description: The id of the change-type rule that matched.
  returned: always
  type: str
route_rule:
  description: The id of the route rule that matched.
  returned: always
  type: str
stabilization_seconds:
  description: The stabilization period the policy sets for this risk level, for M(relops.release.stabilization).
  returned: always
  type: int
facts:
  description: The facts the rules read (null when unknown).
  returned: always
  type: dict
evidence:
  description: Where the facts came from (CIs and services affected, deployments read, test totals, report files).
  returned: always
  type: dict
template:
  description: The claimed template, whether the change fits it, and why.
  returned: always
  type: dict
policy:
  description: The policy's name, declared version, content digest and source.
  returned: always
  type: dict
policy_version:
  description: The declared version and content digest as decision records store them.
  returned: always
  type: str
"""
