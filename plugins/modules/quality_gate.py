# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: quality_gate
short_description: Allow or deny a release from its merged JUnit test results and Cobertura coverage
version_added: 0.1.0
description:
  - Merges JUnit XML reports from parallel test shards (suites of the same name add up; a test case
    reported by two shards counts once, with its worse outcome) and Cobertura coverage reports (merged
    line by line; a line is covered when any shard hit it).
  - Judges them against thresholds that depend on the release class. By default a V(strategic) release
    needs the C(unit), C(integration) and C(long) suites and 80% line coverage; an V(operational)
    release needs C(unit) and C(integration) and 70%; an V(emergency) release may skip the long suites
    and the coverage floor but needs a peer review by someone other than the person releasing.
    No class allows failed or errored tests by default.
  - Answers with a decision record (V(allow) or V(deny), every reason, the policy version, a digest of
    every input file and setting, and the time) and stores it in the release ledger, where the change
    gate and C(risk_assess) read it.
  - A report that is missing, not well-formed XML or not a JUnit or Cobertura document is a reason to
    deny, named with its file; the gate still answers.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  subject:
    description: What is being judged, usually the service and version (C(payments-api 1.4.2)); the ledger files the decision under it.
    type: str
    required: true
  release_class:
    description: The release class, which picks the thresholds.
    type: str
    required: true
    choices: [strategic, operational, emergency]
  junit:
    description: JUnit XML report files, one per shard; shell-style wildcards are expanded on the controller.
    type: list
    elements: path
    required: true
  coverage:
    description: Cobertura XML coverage reports; wildcards are expanded. Omit when the class needs no coverage.
    type: list
    elements: path
    default: []
  thresholds:
    description:
      - "Overrides per class, merged over the defaults, for example
        C({strategic: {min_line_coverage: 85, required_suites: [unit, integration, e2e]}})."
      - Keys are C(min_tests), C(max_failures), C(max_errors), C(min_line_coverage) (percent, or null
        for none), C(required_suites) and C(require_peer_review).
    type: dict
    default: {}
  peer_reviewed_by:
    description: Who reviewed the release; required for classes with C(require_peer_review), and must not be the person releasing.
    type: str
  policy_version:
    description: The policy version written into the decision record.
    type: str
    default: quality-gate/1
  fail_on_deny:
    description: Fail the task when the decision is V(deny). Set V(false) to branch on RV(decision) instead.
    type: bool
    default: true
  release_id:
    description:
      - The release record to write the decision into, as its C(quality) stage
        (RV(relops.release.artifact_verify#module:release_id)). M(relops.release.change_gate) denies a release
        whose artifact has a recorded quality V(deny), and, where the policy's environment says
        C(quality_required), one with no quality decision at all. Nothing is written in check mode.
    type: str
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Decides as usual but does not store the decision in the ledger.
  diff_mode:
    support: none
notes:
  - The gate reports RV(ignore:changed=false); storing its decision record is bookkeeping, not a change to the release.
  - Reports are parsed with C(defusedxml) when it is installed, otherwise with the standard library.
seealso:
  - module: relops.release.health_gate
  - module: relops.release.smoke_check
"""

EXAMPLES = r"""
- name: Judge the test results of the release candidate
  relops.release.quality_gate:
    subject: "payments-api {{ release_version }}"
    release_class: "{{ release_class }}"
    junit:
      - reports/unit.xml
      - reports/integration-shard-*.xml
      - reports/long.xml
    coverage:
      - reports/coverage-*.xml
  run_once: true

- name: Emergency fix, reviewed by a second engineer
  relops.release.quality_gate:
    subject: "payments-api {{ release_version }}"
    release_class: emergency
    junit: [reports/unit.xml]
    peer_reviewed_by: alice
    fail_on_deny: false
  register: quality
  run_once: true
"""

RETURN = r"""
decision:
  description: V(allow) or V(deny).
  returned: always
  type: str
reasons:
  description: Why; on deny, every problem found, each naming the file, suite or threshold.
  returned: always
  type: list
  elements: str
policy_version:
  description: The policy version of the thresholds.
  returned: always
  type: str
inputs_digest:
  description: C(sha256:) of the report files' contents and the settings the decision used.
  returned: always
  type: str
decided_at:
  description: When the decision was made (RFC 3339, UTC).
  returned: always
  type: str
allowed:
  description: Whether the decision is V(allow).
  returned: always
  type: bool
recorded:
  description: Whether the decision was stored in the ledger (false in check mode).
  returned: always
  type: bool
release_class:
  description: The class judged.
  returned: always
  type: str
thresholds:
  description: The thresholds applied, defaults merged with O(thresholds).
  returned: always
  type: dict
tests:
  description: Merged test totals (C(total)), per suite (C(suites)), and the failed cases (C(failed_cases)).
  returned: always
  type: dict
coverage:
  description: Merged line coverage (C(line_percent), C(lines_covered), C(lines_valid), C(files)), or null without O(coverage).
  returned: always
  type: dict
"""
