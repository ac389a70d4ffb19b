# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_analysis
short_description: Judge a canary with an analysis run of metric conditions, Argo Rollouts style
version_added: 0.1.0
description:
  - Measures every metric in O(metrics) up to O(count) times, O(interval) seconds apart, and answers
    V(successful), V(failed) or V(inconclusive), as an Argo Rollouts AnalysisRun or a Flagger analysis does.
  - A metric's value comes from Prometheus (C(provider=prometheus), a PromQL C(query), through the same client as
    M(relops.release.health_gate)) or, when there is no Prometheus, from probe statistics (C(provider=probe), a
    C(statistic)); then the canary's own URL (O(probe)) is requested C(probe.requests) times per measurement, and
    the error rate and latency percentiles of that batch are the values.
  - Each measurement is judged by the metric's C(success_condition) and C(failure_condition), Jinja2 expressions on
    C(result) (for example C(result < 0.01)) evaluated in a sandbox. A measurement fails when C(failure_condition)
    holds; it succeeds when C(success_condition) holds; it fails when only C(success_condition) is given and does
    not hold; it is inconclusive when both are given and neither holds.
  - A query that returned no samples (or only NaN, a ratio over no traffic), or a latency statistic when no probe
    request was answered, has no data; the metric's C(no_data) (else O(no_data)) says whether that measurement is
    successful (V(pass)), failed (V(fail)) or inconclusive (V(inconclusive)). Prometheus not answering makes the
    measurement inconclusive.
  - A metric fails as soon as more than its C(failure_limit) measurements failed, and is inconclusive as soon as
    more than its C(inconclusive_limit) were inconclusive; the run stops there. The run failed when any metric
    failed, else is inconclusive when any metric is, else successful.
  - Every measurement is returned and written to the audit trail (a C(canary_analysis) module event); the outcome
    is a decision record (V(successful) is V(allow), V(failed) V(deny), V(inconclusive) V(wait)), stored in the
    release ledger when O(subject) is given.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(requests) on the controller, for Prometheus
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  metrics:
    description:
      - The metrics to judge. Each has C(name), C(success_condition) and/or C(failure_condition) (Jinja2
        expressions whose only variable is C(result), the measured number), and optionally C(no_data)
        (V(pass), V(fail) or V(inconclusive)), C(failure_limit) and C(inconclusive_limit) (this metric's own limits).
      - "For C(provider=prometheus) (the default when C(query) is given): C(query) (PromQL giving a vector or
        scalar), optionally C(range) (C({duration: 60, step: 5}) in seconds, for a range query) and C(reduce)
        (V(max) by default, V(min), V(avg) or V(last); how several series or samples become one number)."
      - For C(provider=probe) (the default when C(statistic) is given), C(statistic) is one of V(error_rate),
        V(success_rate) (fractions from 0 to 1), V(latency_mean), V(latency_p50), V(latency_p90), V(latency_p95),
        V(latency_p99), V(latency_max) (seconds, nearest-rank percentiles over the answered requests).
    type: list
    elements: dict
    required: true
  failure_limit:
    description: How many failed measurements a metric tolerates, unless the metric sets its own.
    type: int
    default: 0
  inconclusive_limit:
    description: How many inconclusive measurements a metric tolerates, unless the metric sets its own.
    type: int
    default: 0
  prometheus_url:
    description: The Prometheus server, for example V(http://prometheus.example.com:9090). Needed by prometheus metrics.
    type: str
  probe:
    description:
      - How probe metrics ask the canary. C(url) (required by probe metrics) is the canary's own address, not the
        router's. C(requests) per measurement (default 20), C(concurrency) (default 4), C(timeout) per request in
        seconds (default 5), C(method) (V(GET) or V(HEAD)), C(headers), C(status) (the statuses that count as
        success; by default any status below 500, so only 5xx answers and requests without an answer are errors),
        C(validate_certs) and C(ca_path) for HTTPS.
    type: dict
  label:
    description: What this run judges, for example C(step 2 at 25%); shown in the message and the audit event.
    type: str
  subject:
    description: Store the decision in the ledger under this subject (for example C(payments-api 1.4.2 production)).
    type: str
  policy_version:
    description: The policy version written into the decision record.
    type: str
    default: canary-analysis/1
  fail_on:
    description:
      - The verdicts that fail the task. Use V([]) (as the C(relops.release.canary) role does) to branch on
        RV(verdict) instead.
    type: list
    elements: str
    choices: [failed, inconclusive]
    default: [failed, inconclusive]
extends_documentation_fragment:
  - relops.release.measurements
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Measures as usual (queries and GET or HEAD probes only read) but does not store the decision.
  diff_mode:
    support: none
notes:
  - A query Prometheus refuses (bad PromQL), or a condition that is not a comparison, fails the task at once;
    that is a mistake in the analysis, not a verdict on the canary.
  - Use it with C(run_once=true); the analysis judges the service, not a host.
seealso:
  - module: relops.release.health_gate
  - module: relops.release.smoke_check
"""

EXAMPLES = r"""
- name: Analyse the canary at this step from Prometheus
  relops.release.canary_analysis:
    prometheus_url: http://prometheus.example.com:9090
    label: step 2 at 25%
    interval: 30
    count: 4
    failure_limit: 1
    metrics:
      - name: error ratio
        query: >-
          sum(rate(http_requests_total{track="canary",code=~"5.."}[1m]))
          / sum(rate(http_requests_total{track="canary"}[1m]))
        success_condition: result < 0.01
        failure_condition: result >= 0.05
        no_data: fail
      - name: p99 latency
        query: >-
          histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{track="canary"}[1m])))
        success_condition: result < 0.5
    fail_on: []
  register: analysis
  run_once: true

- name: Without Prometheus, probe the canary directly
  relops.release.canary_analysis:
    probe:
      url: http://10.0.0.5:8081/
      requests: 50
    interval: 10
    count: 3
    metrics:
      - name: errors
        statistic: error_rate
        success_condition: result <= 0.02
      - name: p95 latency
        statistic: latency_p95
        success_condition: result < 0.3
  run_once: true
"""

RETURN = r"""
verdict:
  description: V(successful), V(failed) or V(inconclusive).
  returned: success
  type: str
label:
  description: The O(label) given.
  returned: success
  type: str
rounds:
  description: How many rounds of measurements were taken (fewer than O(count) when a metric decided early).
  returned: success
  type: int
decision:
  description: V(allow), V(deny) or V(wait), the verdict as a decision record.
  returned: success
  type: str
reasons:
  description: Per metric, its phase with the tally against its limits and the last measurement's detail.
  returned: success
  type: list
  elements: str
policy_version:
  description: The policy version.
  returned: success
  type: str
inputs_digest:
  description: C(sha256:) of the analysis settings and every value measured.
  returned: success
  type: str
decided_at:
  description: When the analysis decided (RFC 3339, UTC).
  returned: success
  type: str
recorded:
  description: Whether the decision was stored in the ledger.
  returned: success
  type: bool
metrics:
  description: Every metric with its phase, tallies, limits and measurements.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The metric's name.
      type: str
    provider:
      description: V(prometheus) or V(probe).
      type: str
    phase:
      description: V(successful), V(failed) or V(inconclusive).
      type: str
    successful:
      description: How many measurements succeeded.
      type: int
    failed:
      description: How many measurements failed.
      type: int
    inconclusive:
      description: How many measurements were inconclusive.
      type: int
    failure_limit:
      description: The metric's failure limit.
      type: int
    inconclusive_limit:
      description: The metric's inconclusive limit.
      type: int
    measurements:
      description:
        - Each measurement's C(index) (1 for the first), C(at) (seconds since the epoch), C(value) (null without
          data), C(phase) and C(detail); probe measurements add C(probe) (C(requests), C(errors), C(statuses)).
      type: list
      elements: dict
"""
