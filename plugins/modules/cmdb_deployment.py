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
  - The service has one CI per environment, as ServiceNow's Common Service Data Model has one application
    service per deployment of an application. The CI is named V(<service> (<environment>\)) (O(ci_name) to
    choose another name), carries C(environment) and C(version), and is created on the first deployment to
    the environment. So production at 1.9.0 and staging at 2.0.0 are two CIs, each with its own version,
    hosts and last change. Modules that take a CI name and an environment
    (M(relops.release.risk_assess), M(relops.release.change_gate), M(relops.release.change_request),
    M(relops.release.cmdb_impact), M(relops.release.release_plan)) read this CI for the service's name.
  - Sets the CI's C(version), relates it to each host with C(Runs on::Runs), adds the application and
    hosts to the change's affected CIs, and writes the deployment to the release ledger.
  - O(hosts) is where the service now runs in the environment. A successful deployment removes the
    C(Runs on::Runs) relations to hosts not in O(hosts) (a host that left the inventory), unless
    O(prune_hosts=false). A failed or rolled-back deployment removes none.
  - Before version 1.1.0 the CI was named O(service) in every environment. That CI is left as it was; set
    its C(install_status) to V(7) (Retired) with M(relops.release.cmdb_ci) once every environment has
    deployed, or set O(ci_name) to O(service) to keep writing it (one environment only).
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
    description: The service deployed; its CI in O(environment) is named V(<service> (<environment>\)).
    type: str
    required: true
  ci_name:
    description: The name of the service's CI in O(environment), instead of V(<service> (<environment>\)).
    type: str
    version_added: 1.1.0
  prune_hosts:
    description:
      - Remove the CI's C(Runs on::Runs) relations to hosts not in O(hosts) when O(status=successful).
      - Set V(false) when O(hosts) is only part of where the service runs (one batch of a rolling deployment).
    type: bool
    default: true
    version_added: 1.1.0
  version:
    description: The version deployed.
    type: str
    required: true
  environment:
    description: The environment deployed to, as the ledger records it; also the CI's C(environment).
    type: str
    required: true
  hosts:
    description:
      - Names of the host CIs the service now runs on in O(environment). They must exist.
      - Relations to hosts not named are removed (see O(prune_hosts)).
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

- name: Record one batch of a rolling deployment (the other hosts still run the service)
  relops.release.cmdb_deployment:
    service: payments-api
    version: "{{ release_version }}"
    environment: staging
    hosts: "{{ ansible_play_batch }}"
    prune_hosts: false
  run_once: true
"""

RETURN = r"""
app:
  description: The service's CI in O(environment).
  returned: always
  type: dict
  sample: {sys_id: 3a1f0c9e2b7d4e5f8a6b1c2d3e4f5a6b, name: payments-api (production), environment: production,
           version: 1.9.0, sys_class_name: cmdb_ci_appl}
hosts_added:
  description: Names of the hosts the CI was newly related to with C(Runs on::Runs).
  returned: always
  type: list
  elements: str
hosts_pruned:
  description: Names of the hosts whose C(Runs on::Runs) relation was removed (they left O(hosts)).
  returned: always
  type: list
  elements: str
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
