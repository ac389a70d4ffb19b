# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_record
short_description: Write one stage of a release into its release record
version_added: 1.1.0
description:
  - Appends what one stage of a release saw (migrations, deployment, smoke and health results,
    stabilization, incident, rollback, outcome, and the like) to the release's record in the ledger.
    Every stage of the C(relops.release.release) role writes one; M(relops.release.release_record_info)
    reads them back, and metrics and reviews count from them (docs/release-record.md).
  - The stages a gate decides from are written only by the module that checked them, never by this
    module - C(verification) by M(relops.release.artifact_verify) (O(relops.release.artifact_verify#module:record=true),
    which also opens the record), C(risk) by M(relops.release.risk_assess), C(gate) and C(permit) by
    M(relops.release.change_gate) - so a playbook cannot write evidence the gate then believes.
  - A record is finished by its C(outcome) stage; afterwards only C(rollback) and C(outcome) may be
    written (a later rollback of a released version is part of the same release).
  - Runs on the controller, where the ledger is.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  release_id:
    description: The release, as M(relops.release.artifact_verify) returned it (RV(relops.release.artifact_verify#module:release_id)).
    type: str
    required: true
  stage:
    description:
      - The stage this entry records. A stage written again is appended; the newest entry is the
        stage's value and every entry stays in the record's history.
      - V(outcome) takes C(outcome) in O(data) (V(successful), V(failed), V(rolled_back) or V(aborted)) and
        optionally C(rolled_back_to), and finishes the record.
    type: str
    required: true
    choices: [change, readiness, migrations, deployment, smoke, health, stabilization, incident, rollback, outcome]
  data:
    description:
      - What the stage saw, as a mapping. C(change) sets the record's change number from C(number),
        C(deployment) its strategy from C(strategy).
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
    details: In check mode the record is read and nothing is written.
  diff_mode:
    support: none
seealso:
  - module: relops.release.release_record_info
  - module: relops.release.artifact_verify
  - module: relops.release.change_gate
"""

EXAMPLES = r"""
- name: Verify the package and open its release record
  relops.release.artifact_verify:
    path: "{{ built.path }}"
    checksum: "{{ built.digest }}"
    environment: staging
    record: true
  register: verified
  run_once: true

- name: Record the deployment
  relops.release.release_record:
    release_id: "{{ verified.release_id }}"
    stage: deployment
    data:
      strategy: blue_green
      hosts: "{{ ansible_play_hosts }}"
  run_once: true

- name: Finish the record
  relops.release.release_record:
    release_id: "{{ verified.release_id }}"
    stage: outcome
    data:
      outcome: successful
  run_once: true
"""

RETURN = r"""
release_id:
  description: The release written to.
  returned: always
  type: str
  sample: payments-api@2.4.0/staging/9f2c0d6c4b4e
stage:
  description: The stage written.
  returned: always
  type: str
  sample: deployment
record:
  description: The record after the write (in check mode, as it is), with C(stages) (the newest entry of each stage) and C(history).
  returned: always
  type: dict
"""
