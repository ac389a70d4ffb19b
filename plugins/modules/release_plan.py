# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_plan
short_description: Validate and analyse a release plan, and export it for calendars and roadmap reviews
version_added: 0.1.0
description:
  - Reads a YAML release plan (releases with class, quarter, window, milestones, scope items, vendor
    deliveries, dependencies on other releases, CIs touched and business unit) and validates it against
    the collection's JSON Schema. Every violation is reported with its place in the plan, for example
    C(plan.releases[3].vendors[0].date).
  - Governance rigor per class (V(strategic), V(operational), V(emergency)) lists the approvals,
    stakeholders, required milestones and notice each release needs; missing milestones and short
    notice are findings. The plan's C(governance) section overrides the defaults per class.
  - Conflicts are pairs of releases whose windows overlap and that touch the same CI or CIs related
    in the CMDB within the plan's C(related_depth) relations (the traversal of
    M(relops.release.cmdb_impact), on the local or ServiceNow backend). A CI the CMDB does not know
    fails the task, naming the release. A service named by a release with an C(environment) is read as
    its CI in that environment (V(<service> (<environment>\)), as M(relops.release.cmdb_deployment) names
    it), and as the CI of that exact name when there is none.
  - Vendor slips are releases starting before a vendor delivery plus its buffer days. O(vendor_moves)
    asks what moves if vendor dates move; the answer (RV(moves)) follows dependencies release by release.
  - Compliance items are at risk when their release ends after the deadline, as planned or once it slips.
  - Dependencies give an order in which every release follows what it depends on; a dependency cycle
    fails the task and names the cycle.
  - Releases inside blackout or peak windows of the governance calendars (the plan's C(calendars),
    read as M(relops.release.blackout_check) reads them) are findings.
  - Exports an iCalendar file, a Markdown page and an HTML page; each is written only when its content
    changes.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(icalendar), C(recurring-ical-events) and C(croniter) on the controller, for the calendars and exports
  - C(jsonschema) on the controller
  - C(requests) on the controller, only for the ServiceNow backend
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  src:
    description: Path of the YAML plan, looked up like other task files. Give this or O(plan).
    type: path
  plan:
    description: The plan as a mapping, instead of O(src).
    type: dict
  as_of:
    description:
      - The reference date for notice periods and the iCalendar C(DTSTAMP), C(YYYY-MM-DD) or RFC 3339.
      - Defaults to midnight UTC today, so exports written twice in one day are identical.
    type: str
  vendor_moves:
    description:
      - What-if moves of vendor deliveries, each with C(vendor), C(date) and optionally C(delivery)
        (otherwise every delivery of that vendor moves).
    type: list
    elements: dict
    default: []
  ical_dest:
    description: Where to write the iCalendar (RFC 5545) export.
    type: path
  markdown_dest:
    description: Where to write the Markdown roadmap.
    type: path
  html_dest:
    description: Where to write the HTML roadmap.
    type: path
  fail_on:
    description: Fail the task when a finding of this severity or worse exists. V(never) only reports.
    type: str
    choices: [error, warning, never]
    default: never
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.itsm
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Analyses and reports which exports would change; writes nothing.
  diff_mode:
    support: full
    details: Shows each export file before and after.
seealso:
  - module: relops.release.cmdb_impact
notes:
  - The plan format, with an example, is in the collection's C(docs/planning.md).
"""

EXAMPLES = r"""
- name: Review the 2027 roadmap
  relops.release.release_plan:
    src: plans/2027.yml
    ical_dest: "{{ playbook_dir }}/out/roadmap.ics"
    markdown_dest: "{{ playbook_dir }}/out/roadmap.md"
    html_dest: "{{ playbook_dir }}/out/roadmap.html"
  register: review
  run_once: true

- name: What moves if ACME delivers the HSM firmware two weeks late
  relops.release.release_plan:
    src: plans/2027.yml
    vendor_moves:
      - vendor: acme
        delivery: HSM firmware 5.2
        date: "2027-02-03"
  register: what_if
  run_once: true

- name: Block the plan when anything is an error (cycle-free but e.g. a compliance deadline missed)
  relops.release.release_plan:
    src: plans/2027.yml
    fail_on: error
  run_once: true
"""

RETURN = r"""
releases:
  description: Each release with its window, feasible window and governance rigor.
  returned: success
  type: list
  elements: dict
order:
  description: Release ids in dependency order (earlier starts first among releases that may go together).
  returned: success
  type: list
  elements: str
  sample: [core-27.1, orders-27.1, payments-27.1]
findings:
  description: What the analysis found, each with kind, severity, releases, message and details.
  returned: success
  type: list
  elements: dict
  sample:
    - kind: vendor_slip
      severity: warning
      releases: [payments-27.1]
      message: release payments-27.1 starts 2027-02-01, 2.0 days before acme's HSM firmware (due 2027-01-27) plus 7 buffer days
      details: {vendor: acme, delivery: HSM firmware, short_days: 2.0}
moves:
  description: Releases whose feasible start is later than planned, with why (vendor, dependency).
  returned: success
  type: list
  elements: dict
counts:
  description: Number of findings per kind.
  returned: success
  type: dict
exports_written:
  description: Export files written (or that would be, in check mode).
  returned: success
  type: list
  elements: str
"""
