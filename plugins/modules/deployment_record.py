# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_record
short_description: Record a deployment's start and outcome in the release ledger, and find the rollback target
version_added: 0.1.0
description:
  - V(started) inserts a deployment (service, version, environment, strategy, artifact digest) as
    C(in_progress) and returns its id; V(finished) sets its final status.
  - V(query) returns the newest deployments and the rollback target, the newest C(successful) deployment
    of a version other than O(exclude_version). A deployment that failed, is still in progress, or was
    rolled back is never a rollback target.
  - Runs on the controller. Use it with C(run_once=true).
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  state:
    description: What to do.
    type: str
    choices: [started, finished, query]
    default: started
  service:
    description: The service deployed. Required with V(started).
    type: str
  environment:
    description: The environment deployed to. Required with V(started).
    type: str
  version:
    description: The version deployed. Required with V(started).
    type: str
  strategy:
    description: How it is deployed, e.g. V(blue_green).
    type: str
  artifact_digest:
    description: The package digest, C(sha256:<hex>); rollback reinstalls the package by it.
    type: str
  change_id:
    description: The change request this deployment belongs to.
    type: str
  details:
    description: JSON-serialisable details stored with the deployment (hosts, slots).
    type: dict
    default: {}
  deployment_id:
    description: The id V(started) returned. Required with V(finished).
    type: int
  status:
    description: The outcome, with V(finished).
    type: str
    choices: [successful, failed, rolled_back]
  exclude_version:
    description: With V(query), the version that must not be the rollback target (the one being rolled back).
    type: str
  limit:
    description: With V(query), how many deployments to read, newest first.
    type: int
    default: 50
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports the change without writing; V(query) reads in check mode too.
  diff_mode:
    support: none
seealso:
  - module: relops.release.ledger_info
"""

EXAMPLES = r"""
- name: Record the start of the deployment
  relops.release.deployment_record:
    service: demo-app
    environment: production
    version: 1.4.0
    strategy: blue_green
    artifact_digest: "{{ built.digest }}"
  run_once: true
  register: deployment

- name: Record its outcome
  relops.release.deployment_record:
    state: finished
    deployment_id: "{{ deployment.deployment_id }}"
    status: successful
  run_once: true

- name: Which release would a rollback go back to?
  relops.release.deployment_record:
    state: query
    service: demo-app
    environment: production
    exclude_version: 1.4.0
  run_once: true
  register: history
"""

RETURN = r"""
deployment_id:
  description: The deployment's id (null in check mode for V(started)).
  returned: started or finished
  type: int
deployments:
  description: The newest deployments of the service in the environment, newest first.
  returned: query
  type: list
  elements: dict
last_successful:
  description: The newest successful deployment, or null.
  returned: query
  type: dict
rollback_target:
  description: The newest successful deployment of a version other than O(exclude_version), or null.
  returned: query
  type: dict
"""
