# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_record_info
short_description: Read release records - one with every stage, or the newest of a service
version_added: 1.1.0
description:
  - Reads release records from the ledger (docs/release-record.md). With O(release_id), returns that
    record with every stage it passed (RV(record.stages), the newest entry of each, and
    RV(record.history), all of them in order) and the stages it has no entry for
    (RV(missing_stages)). Without it, lists the newest records, optionally of one service or
    environment.
  - Never writes. Runs on the controller, where the ledger is.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  release_id:
    description: The release to read.
    type: str
  service:
    description: Without O(release_id), only records of this service.
    type: str
  environment:
    description: Without O(release_id), only records for this environment.
    type: str
  limit:
    description: Without O(release_id), how many of the newest records to return.
    type: int
    default: 20
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
seealso:
  - module: relops.release.release_record
"""

EXAMPLES = r"""
- name: Read one release's record
  relops.release.release_record_info:
    release_id: "{{ verified.release_id }}"
  register: release
  run_once: true

- name: Show who signed it and which permit it ran under
  ansible.builtin.debug:
    msg: >-
      signers {{ release.record.stages.verification.signers | join(', ') }},
      permit {{ release.record.permit_id }}, outcome {{ release.record.outcome }}

- name: The ten newest production releases of a service
  relops.release.release_record_info:
    service: payments-api
    environment: production
    limit: 10
  register: recent
  run_once: true
"""

RETURN = r"""
record:
  description: The record asked for by O(release_id).
  returned: when O(release_id) is given
  type: dict
  contains:
    release_id:
      description: The release id (C(<service>@<version>/<environment>/<digest prefix>), C(#<n>) for a later attempt).
      type: str
    outcome:
      description: V(in_progress), V(successful), V(failed), V(rolled_back) or V(aborted).
      type: str
    stages:
      description: Each stage's newest entry, by stage name.
      type: dict
    history:
      description: Every stage entry in the order written, with C(stage), C(run_id), C(recorded_at) and C(data).
      type: list
      elements: dict
missing_stages:
  description: The stages the record has no entry for.
  returned: when O(release_id) is given
  type: list
  elements: str
releases:
  description: The records found, newest first (without their stages when listed).
  returned: always
  type: list
  elements: dict
"""
