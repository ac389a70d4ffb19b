# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: env_compare
short_description: Compare two environments over gathered facts and declared configuration, against an allow-list
version_added: 0.1.0
description:
  - Compares two environments, each an inventory group or a host (for example C(staging) and C(production)), over
    the gathered facts named in O(facts) and the host variables named in O(config). Nested values are compared
    key by key, so a deviation names the exact key.
  - When the hosts of one environment disagree among themselves, the environment's value is shown as
    a mapping with the single key C(differs_within) listing the values and differs from the other side.
  - Each difference matching an entry of O(allow) is accepted with that entry's reason; the rest are reported in
    RV(deviations). Allow-list entries that matched nothing are returned in RV(stale_allowances) so the list can
    be pruned.
  - Reads only; never changes anything. Gather facts on both environments first.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
options:
  left:
    description: The first environment, an inventory group or host name.
    type: str
    required: true
  right:
    description: The second environment, an inventory group or host name.
    type: str
    required: true
  facts:
    description: Dotted paths under C(ansible_facts) to compare, for example C(distribution_version) or C(ansible_local.app).
    type: list
    elements: str
    default: [distribution, distribution_version, kernel, architecture, python_version]
  config:
    description: Dotted paths of host variables (the declared configuration) to compare, for example C(app_settings).
    type: list
    elements: str
    default: []
  allow:
    description: Accepted deviations.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - The compared path, with C(facts.) or C(config.) in front; shell-style wildcards allowed, for example
            C(config.app_settings.workers) or C(facts.ansible_local.app.*).
        type: str
        required: true
      reason:
        description: Why the deviation is accepted; required and shown in RV(accepted).
        type: str
        required: true
      left:
        description: Accept the deviation only when the left environment has this value.
        type: raw
      right:
        description: Accept the deviation only when the right environment has this value.
        type: raw
  fail_on_deviation:
    description: Fail the task when deviations outside the allow-list remain.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Staging must match production except where we said why
  relops.release.env_compare:
    left: staging
    right: production
    facts: [distribution_version, kernel, ansible_local.app]
    config: [app_settings, nginx_version]
    allow:
      - path: config.app_settings.workers
        reason: production is sized for its load
      - path: facts.kernel
        right: 6.1.0-28-amd64
        reason: production kernel is patched first (CHG0031337)
    fail_on_deviation: true
  run_once: true
"""

RETURN = r"""
deviations:
  description: Differences not in the allow-list.
  returned: always
  type: list
  elements: dict
  sample: [{path: config.app_settings.log_level, left: debug, right: warn}]
accepted:
  description: Differences the allow-list accepts, each with its reason.
  returned: always
  type: list
  elements: dict
stale_allowances:
  description: Allow-list entries that matched no difference.
  returned: always
  type: list
  elements: dict
compared:
  description: How many paths were compared.
  returned: always
  type: int
report:
  description: The deviations as text, C(before) the left environment and C(after) the right.
  returned: always
  type: dict
left:
  description: The left environment's name and hosts.
  returned: always
  type: dict
right:
  description: The right environment's name and hosts.
  returned: always
  type: dict
"""
