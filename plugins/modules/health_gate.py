# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: health_gate
short_description: Judge a release's health from Prometheus queries over several measurements
version_added: 0.1.0
description:
  - Evaluates conditions on Prometheus queries through its HTTP API, for example an error ratio under
    1% and a p95 latency under 300 ms, O(count) times every O(interval) seconds, and answers
    V(pass), V(fail) or V(inconclusive), as an Argo Rollouts analysis run does.
  - A measurement fails when any condition fails, and is inconclusive when none fails but one is
    inconclusive (no data judged V(inconclusive), or Prometheus not answering). The gate fails as soon
    as more than O(failure_limit) measurements failed, and is inconclusive as soon as more than
    O(inconclusive_limit) were inconclusive; otherwise it passes after O(count) measurements.
  - A query that returns no samples, or only NaN (a ratio with no traffic), has no data; O(no_data)
    (or the condition's own C(no_data)) says whether that passes, fails or is inconclusive.
  - O(baseline) compares a canary against the stable baseline, as Kayenta does; the canary's value
    divided by the baseline's must stay under C(max_ratio).
  - Returns each measurement with its verdict and the outcome as a decision record (V(pass) is
    V(allow), V(fail) V(deny), V(inconclusive) V(wait)); with O(subject) the record is stored in the
    release ledger.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, for Prometheus
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  prometheus_url:
    description: The Prometheus server, for example V(http://prometheus.example.com:9090).
    type: str
    required: true
  conditions:
    description:
      - "Each condition has C(name), C(query) (PromQL giving a vector or scalar), C(below) and/or C(above)
        (strict bounds), and optionally C(range) (C({duration: 60, step: 5}) in seconds, for a range query),
        C(reduce) (how several series or samples become one value, V(max) by default, or V(min), V(avg),
        V(last)) and C(no_data) (this condition's verdict when there is no data)."
    type: list
    elements: dict
    default: []
  baseline:
    description:
      - Canary-versus-baseline comparisons. Each has C(name), C(canary_query), C(baseline_query),
        C(max_ratio) (the canary divided by the baseline must be under it) and optionally C(no_data).
      - A baseline of 0 with a canary of 0 is a ratio of 1; a baseline of 0 with a non-zero canary has no data.
    type: list
    elements: dict
    default: []
  failure_limit:
    description: How many failed measurements are tolerated; one more fails the gate.
    type: int
    default: 0
  inconclusive_limit:
    description: How many inconclusive measurements are tolerated; one more makes the gate inconclusive.
    type: int
    default: 0
  subject:
    description: Store the decision in the ledger under this subject (for example C(payments-api 1.4.2 production)).
    type: str
  policy_version:
    description: The policy version written into the decision record.
    type: str
    default: health-gate/1
  fail_on:
    description: The verdicts that fail the task. Use V([fail]) to go on after an inconclusive verdict and branch on RV(verdict).
    type: list
    elements: str
    choices: [fail, inconclusive]
    default: [fail, inconclusive]
extends_documentation_fragment:
  - relops.release.measurements
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Queries Prometheus as usual (it only reads) but does not store the decision.
  diff_mode:
    support: none
notes:
  - A query Prometheus refuses (bad PromQL) fails the task at once with Prometheus's error; it is a
    mistake in the gate, not a verdict on the release.
  - Use it with C(run_once=true); the gate judges the service, not a host.
seealso:
  - module: relops.release.smoke_check
  - module: relops.release.quality_gate
"""

EXAMPLES = r"""
- name: Watch the new release for five minutes
  relops.release.health_gate:
    prometheus_url: http://prometheus.example.com:9090
    subject: "payments-api {{ release_version }} production"
    interval: 30
    count: 10
    failure_limit: 1
    no_data: fail
    conditions:
      - name: error ratio
        query: >-
          sum(rate(http_requests_total{service="payments-api",code=~"5.."}[1m]))
          / sum(rate(http_requests_total{service="payments-api"}[1m]))
        below: 0.01
      - name: p95 latency
        query: >-
          histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="payments-api"}[1m])))
        below: 0.3
  run_once: true

- name: Compare the canary with the stable baseline
  relops.release.health_gate:
    prometheus_url: http://prometheus.example.com:9090
    interval: 60
    count: 5
    baseline:
      - name: p99 latency
        canary_query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{track="canary"}[2m])))
        baseline_query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{track="stable"}[2m])))
        max_ratio: 1.2
    fail_on: [fail]
  register: canary_analysis
  run_once: true
"""

RETURN = r"""
verdict:
  description: V(pass), V(fail) or V(inconclusive).
  returned: success
  type: str
decision:
  description: V(allow), V(deny) or V(wait), the verdict as a decision record.
  returned: success
  type: str
reasons:
  description: The tally of measurements against the limits and, unless passed, each condition's failure.
  returned: success
  type: list
  elements: str
policy_version:
  description: The policy version.
  returned: success
  type: str
inputs_digest:
  description: C(sha256:) of the gate's settings and every value measured.
  returned: success
  type: str
decided_at:
  description: When the gate decided (RFC 3339, UTC).
  returned: success
  type: str
recorded:
  description: Whether the decision was stored in the ledger.
  returned: success
  type: bool
failures:
  description: How many measurements failed.
  returned: success
  type: int
inconclusives:
  description: How many measurements were inconclusive.
  returned: success
  type: int
measurements:
  description: Every measurement taken, in order.
  returned: success
  type: list
  elements: dict
  contains:
    index:
      description: 1 for the first measurement.
      type: int
    at:
      description: When it was taken (seconds since the epoch).
      type: float
    verdict:
      description: The measurement's verdict.
      type: str
    conditions:
      description: Each condition's C(name), C(condition), C(value) (null without data), C(verdict) and C(detail).
      type: list
      elements: dict
"""
