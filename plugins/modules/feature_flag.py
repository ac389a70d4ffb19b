# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: feature_flag
short_description: Manage a feature flag in a flagd flag file or in Unleash, behind the change gate
version_added: 0.1.0
description:
  - Decouples deployment from release. With O(backend=flagd) the flag is one entry in a flagd flag
    definition file (JSON), which flagd reads as a file source, or which any web server serves to
    flagd's HTTP sync source (C(--uri http://host/flags.json)). Other flags in the file are kept.
    The file is written atomically, and only when its content changes.
  - A flagd flag is on/off (O(enabled) sets its C(state)), has variants (on/off booleans unless
    O(variants) says otherwise), a default variant, and optionally a fractional rollout by percentage
    (O(percentage) for on against off, O(rollout) for any variants) or raw O(targeting).
  - The whole file is validated before and after the change against flagd's own published schema
    (C(flags.json) with C(targeting.json), the copy shipped in the collection, or the one O(flagd_schema)
    names), then against the collection's stricter JSON Schema of flagd's documented flag definition
    format. Default variants and fractional buckets must name declared variants, and fractional
    percentages must be whole numbers that sum to 100.
  - With O(backend=unleash) the flag is a feature toggle in an Unleash project, enabled or disabled per
    O(environment), with O(percentage) as its gradual rollout (one C(flexibleRollout) strategy the
    module owns) through Unleash's admin API.
  - Flag changes pass the change gate like deployments. Pass the registered result of
    M(relops.release.change_gate) as O(gate); a flag is changed only when its decision is C(allow) and
    no older than O(gate_max_age). Without O(gate) a change is refused unless O(require_gate=false).
    Check mode reports what would change without asking for the gate.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(jsonschema), C(referencing) and C(requests) on the controller
options:
  name:
    description: The flag key.
    type: str
    required: true
  backend:
    description: Where the flag lives.
    type: str
    choices: [flagd, unleash]
    default: flagd
  state:
    description: V(present) defines the flag; V(absent) removes it from the file or archives it in Unleash.
    type: str
    choices: [present, absent]
    default: present
  enabled:
    description: flagd C(state) V(ENABLED) or V(DISABLED); in Unleash, whether the flag is on in O(environment).
    type: bool
    default: true
  percentage:
    description:
      - Gradual rollout. flagd, the share of users getting variant C(on) (the rest get C(off)), as a fractional
        rule. Unleash, the C(flexibleRollout) percentage.
    type: int
  path:
    description: The flagd flag file (backend flagd). Serve its directory over HTTP for flagd's HTTP sync.
    type: path
  variants:
    description: flagd variants by name, all of one type (boolean, string, number or object). Defaults to C(on=true), C(off=false).
    type: dict
  default_variant:
    description: flagd C(defaultVariant). Defaults to V(off) when that variant exists.
    type: str
  rollout:
    description:
      - flagd fractional rollout, a list of C(variant) and C(percentage) (whole numbers summing to 100).
    type: list
    elements: dict
  bucket_by:
    description: The evaluation context attribute fractional rollouts hash (with the flag key) to keep assignments sticky.
    type: str
    default: targetingKey
  targeting:
    description: Raw flagd targeting rule (JsonLogic), instead of O(rollout) or O(percentage).
    type: dict
  metadata:
    description: flagd flag metadata.
    type: dict
  flagd_schema:
    description:
      - Path of a copy of flagd's published C(flags.json) schema (with C(targeting.json) in the same
        directory) to validate the file against instead of the copy shipped in the collection (flagd
        schema v0, from the npm package C(@openfeature/flagd-core) 1.2.0).
    type: path
  unleash_url:
    description: Base URL of the Unleash server (backend unleash), for example C(https://unleash.example.com).
    type: str
  unleash_token:
    description: An Unleash admin API token or personal access token.
    type: str
  project:
    description: Unleash project.
    type: str
    default: default
  environment:
    description: Unleash environment the toggle and rollout apply to (backend unleash).
    type: str
  stickiness:
    description: Unleash rollout stickiness (C(default), C(userId), C(sessionId), C(random) or a context field).
    type: str
    default: default
  flag_type:
    description: Unleash flag type when the flag is created.
    type: str
    default: release
  description:
    description: Unleash flag description when the flag is created.
    type: str
    default: ''
  validate_certs:
    description: Verify the Unleash server's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each Unleash request.
    type: float
    default: 10.0
  gate:
    description: The registered result of M(relops.release.change_gate) for this change (its decision record).
    type: dict
  require_gate:
    description: Refuse a change when no O(gate) is given.
    type: bool
    default: true
  gate_max_age:
    description: Oldest acceptable gate decision, in seconds.
    type: int
    default: 3600
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Validates and reports what would change; writes nothing and does not need the gate.
  diff_mode:
    support: full
seealso:
  - module: relops.release.change_gate
notes:
  - The collection's flagd rules are stricter than flagd in one place. flagd treats fractional weights
    as relative, the collection requires percentages summing to 100 so that a number in a play is the
    share of users it reads as.
"""

EXAMPLES = r"""
- name: Ask the change gate in staging (production gates need a release record, docs/governance.md)
  relops.release.change_gate:
    service: checkout
    environment: staging
    version: new-checkout-30
    route: automatic
    readiness:
      rollback: {not_needed: the flag is turned off again in seconds}
      communication: [{at: "2026-12-01T12:00:00Z", channel: "#checkout-releases"}]
      roster: oncall/checkout.yml
      runbook: https://runbooks.example.com/checkout
  register: gate
  run_once: true

- name: Roll the new checkout out to 30 percent of users
  relops.release.feature_flag:
    name: new-checkout
    path: flagd/flags.json
    percentage: 30
    gate: "{{ gate }}"
  run_once: true

- name: A three-way experiment
  relops.release.feature_flag:
    name: banner-color
    path: flagd/flags.json
    variants: {red: "#c00", green: "#0c0", blue: "#00c"}
    default_variant: red
    rollout:
      - {variant: red, percentage: 50}
      - {variant: green, percentage: 25}
      - {variant: blue, percentage: 25}
    gate: "{{ gate }}"
  run_once: true

- name: The same flag in Unleash, production at 10 percent
  relops.release.feature_flag:
    backend: unleash
    name: new-checkout
    unleash_url: https://unleash.example.com
    unleash_token: "{{ vault_unleash_admin_token }}"
    environment: production
    percentage: 10
    gate: "{{ gate }}"
  run_once: true
"""

RETURN = r"""
flag:
  description: The flag as written (flagd definition, or Unleash's exists/enabled/rollout/stickiness).
  returned: success
  type: dict
  sample: {state: ENABLED, variants: {"on": true, "off": false}, defaultVariant: "off"}
steps:
  description: The Unleash calls made (create, rollout, enable, disable, archive).
  returned: backend unleash
  type: list
  elements: str
requests_sent:
  description: Number of Unleash API requests.
  returned: backend unleash
  type: int
"""
