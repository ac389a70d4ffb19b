# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: env_reservation
short_description: Reserve a shared test service for a time slot, with its own database or schema
version_added: 0.1.0
description:
  - Keeps time-slot reservations of shared test services (a staging database, a payment sandbox, a
    performance rig) in the release ledger, so teams booking the same service see each other.
  - A slot is half-open, from O(starts_at) up to but not including O(ends_at). A slot that overlaps
    another active reservation of the same O(service) is refused, naming the other reservation and
    the times that would fit.
  - Each reservation names the database or schema its test data lives in (O(data_name)); no two
    active reservations share one, so runs never read each other's data.
  - Re-running with the same values changes nothing; new times or owner move the reservation
    (checked against the others again). O(state=absent) releases it; released reservations stay
    in the ledger as history.
  - The overlap check and the write are one ledger transaction, so two concurrent runs cannot both
    take overlapping slots.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  service:
    description: The shared service being reserved.
    type: str
    required: true
  name:
    description: The reservation's name, unique among the service's active reservations (for example the team and test run).
    type: str
    required: true
  state:
    description: V(present) reserves (or moves) the slot, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  starts_at:
    description: Start of the slot, RFC 3339 with an offset, for example C(2026-12-01T09:00:00Z). Required with O(state=present).
    type: str
  ends_at:
    description: End of the slot (exclusive), RFC 3339. Give this or O(duration).
    type: str
  duration:
    description: Length of the slot in minutes, instead of O(ends_at).
    type: int
  owner:
    description: Who holds the reservation. Defaults to the AWX user, the sudo user or the controller user.
    type: str
  purpose:
    description: Free text shown to others who hit a conflict.
    type: str
  data_name:
    description:
      - The database or schema name for this reservation's data. Lower-case letters, digits and C(_),
        at most 63 characters (PostgreSQL's identifier limit).
      - Defaults to the service and reservation name folded into such a name.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Reads the ledger and reports what would change and any conflict; writes nothing.
  diff_mode:
    support: full
seealso:
  - module: relops.release.release_lock
"""

EXAMPLES = r"""
- name: Book the shared payments sandbox for the nightly performance run
  relops.release.env_reservation:
    service: payments-sandbox
    name: perf-nightly
    starts_at: "2026-12-01T22:00:00Z"
    duration: 120
    purpose: nightly load test
  register: slot
  run_once: true

- name: Create the reservation's own schema
  community.postgresql.postgresql_schema:
    name: "{{ slot.data_name }}"
    database: payments_test

- name: Give the sandbox back
  relops.release.env_reservation:
    service: payments-sandbox
    name: perf-nightly
    state: absent
  run_once: true
"""

RETURN = r"""
reservation:
  description: The reservation as stored (null after a release).
  returned: always
  type: dict
  sample:
    id: 3
    service: payments-sandbox
    name: perf-nightly
    owner: ci
    purpose: nightly load test
    data_name: payments_sandbox_perf_nightly
    status: active
    starts_at: "2026-12-01T22:00:00.000000Z"
    ends_at: "2026-12-02T00:00:00.000000Z"
data_name:
  description: The database or schema name the reservation's data must use.
  returned: always
  type: str
  sample: payments_sandbox_perf_nightly
"""
