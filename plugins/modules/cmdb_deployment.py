# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: cmdb_deployment
short_description: Record that a service version was deployed to hosts under a change
version_added: 0.1.0
description:
  - Records that version O(version) of service O(service) was deployed to O(hosts) under change O(change).
  - Sets the application CI's C(version), relates it to each host with C(Runs on::Runs), adds the
    application and hosts to the change's affected CIs, and writes the deployment to the release ledger.
  - The change becomes each CI's last change the way ServiceNow records it, through the change's
    affected CIs (C(task_ci) rows on ServiceNow, the change's CI list in the ledger); the application CI
    also becomes the change's configuration item (C(cmdb_ci)) when the change has none. Read it back
    with M(relops.release.cmdb_ci_info) and O(relops.release.cmdb_ci_info#module:with_changes).
  - A rerun with the same service, version, environment, change and status changes nothing.
  - Runs on the controller.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  service:
    description: The application CI's name.
    type: str
    required: true
  version:
    description: The version deployed.
    type: str
    required: true
  environment:
    description: The environment deployed to, as the ledger records it.
    type: str
    required: true
  hosts:
    description: Names of the host CIs the application now runs on. They must exist.
    type: list
    elements: str
    default: []
  change:
    description: The change number the deployment ran under.
    type: str
  artifact_digest:
    description:
      - The digest of the package that was deployed (C(sha256:<hex>)), as the artifact verification returned it.
      - A successful record with a digest names a package to go back to, so C(relops.release.blue_green)'s
        rollback can choose it; a record without one never qualifies as a rollback target.
      - The release flow sets it, so that a rerun which found the version already live (for example after
        C(kill -9) mid-switch) still leaves a record to roll back to.
    type: str
  deployed_at:
    description: When the deployment happened (RFC 3339 UTC); now when not set.
    type: str
  status:
    description: How the deployment ended.
    type: str
    choices: [successful, failed, rolled_back]
    default: successful
  app_class:
    description: Class of the application CI.
    type: str
    default: cmdb_ci_appl
  host_class:
    description: Class to find the hosts in (subclasses included).
    type: str
    default: cmdb_ci_server
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
  - module: relops.release.cmdb_ci
  - module: relops.release.change_request
"""

EXAMPLES = r"""
- name: Record the deployment
  relops.release.cmdb_deployment:
    service: payments-api
    version: "{{ release_version }}"
    environment: production
    hosts: "{{ ansible_play_hosts }}"
    change: "{{ change.change.number }}"
  run_once: true
"""

RETURN = r"""
app:
  description: The application CI.
  returned: always
  type: dict
hosts:
  description: The host CIs' sys_ids.
  returned: always
  type: list
  elements: str
deployment_id:
  description: The ledger id of the recorded deployment; null when it was already recorded.
  returned: always
  type: int
last_change:
  description: The change now recorded as the CIs' last change (O(change)), or empty without one.
  returned: always
  type: str
requests_sent:
  description: HTTP requests sent to ServiceNow (0 on the local backend).
  returned: always
  type: int
"""
