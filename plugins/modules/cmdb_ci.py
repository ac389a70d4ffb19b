# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: cmdb_ci
short_description: Upsert configuration items and their relations on the local ledger or ServiceNow
version_added: 0.1.0
description:
  - Creates or updates a CI of any class, found by its O(identity) columns; only attributes that differ are
    written, and an unchanged CI costs no write. The diff shows the changed attributes.
  - With O(use_ire=true) on ServiceNow, the CI goes through the Identification and Reconciliation Engine
    (C(/api/now/identifyreconcile) with C(sysparm_data_source)), so the instance's identification rules apply.
  - O(items) upserts many CIs of one class at once, reading them in batches of a hundred.
  - Relations are added by type name (C(cmdb_rel_ci) with C(cmdb_rel_type) on ServiceNow) and never removed.
  - Runs on the controller.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  ci_class:
    description: The CI class (table), for example V(cmdb_ci_linux_server) or V(cmdb_ci_appl).
    type: str
    default: cmdb_ci
    aliases: [sys_class_name]
  name:
    description: The CI's name (merged into O(attributes)).
    type: str
  attributes:
    description: Attribute values by column name.
    type: dict
    default: {}
  identity:
    description: The columns that identify the CI; all must have values.
    type: list
    elements: str
    default: [name]
  items:
    description: Many CIs (attribute dicts) of O(ci_class) identified by the single O(identity) column.
    type: list
    elements: dict
  relations:
    description: Relations to other CIs.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description: Relation type name, for example V(Runs on::Runs) or V(Depends on::Used by).
        type: str
        required: true
      target:
        description: The other CI's name or sys_id.
        type: str
        required: true
      target_class:
        description: Class to look the target up in.
        type: str
        default: cmdb_ci
      direction:
        description: Whether this CI is the V(parent) (for example the app that runs on a host) or the V(child).
        type: str
        choices: [parent, child]
        default: parent
  use_ire:
    description: Send the CI through ServiceNow's Identification and Reconciliation Engine.
    type: bool
    default: false
  data_source:
    description: The IRE data source (C(sysparm_data_source)), a discovery source the instance knows.
    type: str
    default: ServiceNow
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.itsm
  - relops.release.ledger
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
seealso:
  - module: relops.release.cmdb_ci_info
  - module: relops.release.cmdb_deployment
"""

EXAMPLES = r"""
- name: Register a host by serial number
  relops.release.cmdb_ci:
    ci_class: cmdb_ci_linux_server
    name: web01
    identity: [serial_number]
    attributes:
      serial_number: VMW-42-1A
      ip_address: 10.0.0.11
      os: Linux

- name: The application and what it runs on
  relops.release.cmdb_ci:
    ci_class: cmdb_ci_appl
    name: payments-api
    attributes:
      version: 1.4.0
    relations:
      - type: Runs on::Runs
        target: web01

- name: Through IRE on ServiceNow
  relops.release.cmdb_ci:
    backend: servicenow
    ci_class: cmdb_ci_linux_server
    name: web02
    use_ire: true
    data_source: ServiceNow
    attributes:
      serial_number: VMW-42-1B
"""

RETURN = r"""
ci:
  description: The CI after the task (its planned values in check mode when it does not exist yet).
  returned: without O(items)
  type: dict
  sample: {sys_id: b4fd7c8437201000deeabfc8bcbe5dc1, sys_class_name: cmdb_ci_linux_server, name: web01}
operation:
  description: V(INSERT), V(UPDATE) or V(NO_CHANGE), as IRE names them.
  returned: without O(items)
  type: str
relations:
  description: The relations asked for, with parent and child sys_ids.
  returned: without O(items)
  type: list
  elements: dict
cis:
  description: The CIs, with O(items).
  returned: with O(items)
  type: list
  elements: dict
changed_count:
  description: How many of O(items) were created or updated.
  returned: with O(items)
  type: int
requests_sent:
  description: HTTP requests sent to ServiceNow (0 on the local backend).
  returned: always
  type: int
"""
