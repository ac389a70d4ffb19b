# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: cmdb_ci_info
short_description: Query configuration items by class, name or encoded query
version_added: 0.1.0
description:
  - Lists CIs of a class and its subclasses, by name, sys_id or a ServiceNow encoded query, following
    pagination (C(Link) and C(X-Total-Count)).
  - Runs on the controller and never writes.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  ci_class:
    description: The CI class (table); subclasses are included.
    type: str
    default: cmdb_ci
    aliases: [sys_class_name]
  name:
    description: Only CIs with this name.
    type: str
  sys_id:
    description: Only the CI with this sys_id.
    type: str
  query:
    description: A ServiceNow encoded query, for example C(nameSTARTSWITHweb^ORDERBYname). ServiceNow only.
    type: str
  limit:
    description: At most this many CIs.
    type: int
  with_relations:
    description: Also return each CI's relations (parent, child, type).
    type: bool
    default: false
  with_changes:
    description:
      - Also return the changes that affected each CI, newest first (C(changes), up to 10 numbers), and
        C(last_change), the change that touched it last (empty when none did).
      - On ServiceNow these are read from the CI's C(task_ci) rows (the change's Affected CIs); on the
        local backend from the changes' affected CIs in the ledger.
      - M(relops.release.cmdb_deployment) and M(relops.release.change_request) with
        O(relops.release.change_request#module:configuration_items) record them.
    type: bool
    default: false
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
- name: All Linux servers
  relops.release.cmdb_ci_info:
    ci_class: cmdb_ci_linux_server
  register: servers

- name: Web servers by encoded query, on ServiceNow
  relops.release.cmdb_ci_info:
    backend: servicenow
    ci_class: cmdb_ci_server
    query: nameSTARTSWITHweb^ORDERBYname
    limit: 50
"""

RETURN = r"""
records:
  description: The CIs found; with O(with_changes), each also has C(changes) and C(last_change).
  returned: always
  type: list
  elements: dict
  sample:
    - {sys_id: b4fd7c8437201000deeabfc8bcbe5dc1, sys_class_name: cmdb_ci_linux_server, name: web01}
requests_sent:
  description: HTTP requests sent to ServiceNow (0 on the local backend).
  returned: always
  type: int
"""
