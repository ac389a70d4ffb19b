# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_record
short_description: Record a deployment and its outcome in the release ledger
version_added: 0.1.0
description:
  - Writes a service version's deployment to an environment into the ledger's deployments table, the record
    that DORA metrics and rollback targets are read from.
  - O(status=in_progress) opens a deployment. A final status (V(successful), V(failed), V(rolled_back)) finishes
    the newest deployment of this version when it is in progress, and otherwise records a finished deployment.
  - Idempotent. When the newest deployment of this version (and O(change), when given) already has O(status),
    nothing changes, so a rerun of a finished release leaves the ledger alone; after a finished deployment,
    V(in_progress) opens the next attempt.
author:
  - relops.release maintainers (@relops)
options:
  service:
    description: The service deployed.
    type: str
    required: true
  version:
    description: The version deployed.
    type: str
    required: true
  environment:
    description: The environment deployed to.
    type: str
    required: true
  status:
    description: The deployment's status after the task.
    type: str
    required: true
    choices: [in_progress, successful, failed, rolled_back]
  strategy:
    description: How it was deployed, for example V(canary) or V(blue_green); kept when a deployment is opened.
    type: str
  artifact_digest:
    description: The deployed package's digest, C(sha256:<hex>).
    type: str
  change:
    description: The change request the deployment belongs to.
    type: str
  details:
    description: Anything else worth keeping with the record (steps taken, hosts); stored as JSON.
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reads the ledger (without creating it) and reports whether the record would change.
  diff_mode:
    support: full
    details: Shows the deployment's status before and after.
notes:
  - Use it with C(run_once=true); a deployment is one record for the whole fleet.
seealso:
  - module: relops.release.ledger_info
  - module: relops.release.canary_analysis
"""

EXAMPLES = r"""
- name: Open the deployment
  relops.release.deployment_record:
    service: demo-app
    version: 1.4.0
    environment: production
    status: in_progress
    strategy: canary
  run_once: true

- name: The canary was promoted
  relops.release.deployment_record:
    service: demo-app
    version: 1.4.0
    environment: production
    status: successful
  run_once: true
"""

RETURN = r"""
deployment_id:
  description: The deployment's id in the ledger (null in check mode before it exists).
  returned: success
  type: int
deployment:
  description:
    - The deployment record after the task (what it would be, in check mode), with C(id), C(run_id), C(service),
      C(version), C(environment), C(status), C(strategy), C(artifact_digest), C(change_id), C(started_at),
      C(finished_at) and C(details).
  returned: success
  type: dict
"""
