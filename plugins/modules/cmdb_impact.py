# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: cmdb_impact
short_description: Find the CIs and business services a change to some CIs can affect
version_added: 0.1.0
description:
  - Walks relations from the given CIs, upstream (towards what depends on them, such as the applications
    running on a host and the business services using them), downstream, or both, to O(depth) levels.
  - Returns every CI reached with its depth, and the business services (C(cmdb_ci_service)) among them,
    as input for risk and blast radius.
  - Runs on the controller and never writes.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  cis:
    description:
      - Names or sys_ids of the CIs to start from.
      - With O(environment), a service's name starts from its CI in that environment
        (V(<service> (<environment>\)), as M(relops.release.cmdb_deployment) names it), and from the CI of that
        exact name when there is none.
    type: list
    elements: str
    required: true
  environment:
    description: The environment whose CIs O(cis) names (see there).
    type: str
    version_added: 1.1.0
  direction:
    description: Which way to walk. V(upstream) follows child to parent.
    type: str
    choices: [upstream, downstream, both]
    default: upstream
  depth:
    description: How many relation levels to follow.
    type: int
    default: 3
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.itsm
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Only reads.
  diff_mode:
    support: none
seealso:
  - module: relops.release.cmdb_ci
"""

EXAMPLES = r"""
- name: What does patching this host put at risk
  relops.release.cmdb_impact:
    cis: [web01]
    direction: upstream
    depth: 3
  register: blast
  run_once: true

- name: What depends on payments-api in production (its CI "payments-api (production)")
  relops.release.cmdb_impact:
    cis: [payments-api]
    environment: production
    direction: both
    depth: 2
  run_once: true

- name: Show the business services
  ansible.builtin.debug:
    msg: "{{ blast.business_services | map(attribute='name') | list }}"
"""

RETURN = r"""
roots:
  description: The sys_ids started from.
  returned: always
  type: list
  elements: str
affected:
  description: The CIs reached, each with its depth, nearest first.
  returned: always
  type: list
  elements: dict
  sample:
    - {sys_id: 0c43baaac0a80164008e4cfd8ec2fb2f, name: payments-api, sys_class_name: cmdb_ci_appl, depth: 1}
business_services:
  description: The business services among the affected CIs.
  returned: always
  type: list
  elements: dict
requests_sent:
  description: HTTP requests sent to ServiceNow (0 on the local backend).
  returned: always
  type: int
"""
