# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: release_report
short_description: Write delivery, review and compliance reports from the ledger and audit trail
version_added: 0.1.0
description:
  - Builds reports from the release ledger and the audit trail and writes each as static HTML
    (charts as inline SVG drawn with pygal; no scripts, opens offline), Markdown and JSON into O(dest),
    as C(<report>.<format>).
  - V(dashboard) the four DORA keys plus rework rate, their trends and tiers, per team and service.
  - V(cfr) change failure rate by team and by application (service), with the trend of each; over release
    records also which kinds of release fail, the change failure rate with counts by risk band, migrations,
    strategy, release class, size, weekday and hour.
  - V(pir) a post-implementation review per deployment (O(deployment_ids)) or release (O(release_ids)),
    by default every failed deployment of the window, with the run's timeline from the audit trail, gate
    decisions and their reasons, anomalies (failed, rescued or retried tasks, tasks slower than
    O(slow_task_seconds)), health results, incidents, rollback, and the team's feedback and follow-up
    actions recorded for the release with M(relops.release.release_review) (an open action past its due
    date is flagged V(OVERDUE)); it ends with every open follow-up action of the environment.
  - V(runbook) deployments whose runbook (the manifest's C(runbook) path, which the release record keeps)
    was not updated within O(runbook_max_age_hours) B(after) the deployment, to reflect the new
    configuration, from the runbook's git history or, outside a repository, its modification time.
    Over release records when the environment has them (the time of the record's C(deployment) stage),
    else over the deployments table.
  - V(automation) manual intervention points from the audit trail (pauses, prompts, manual approvals,
    retries, rescues), ranked by how often and how long they held a release.
  - V(pipeline) stage (task) durations, and redundant stages, the same test suite run on the same
    artifact digest more than once.
  - V(calibration) policy outcomes per quarter from the ledger's gate decisions (routes taken, denials
    by the rules that denied, denials whose release was deployed later, found through the release
    record whose gate stage holds the decision, else the C(service/environment/version) or
    C(service@version) subject) and the exemptions used, which are optional input (O(exemptions)).
  - Files are replaced only when their content changes, so a rerun over the same data reports no change.
author:
  - relops.release maintainers (@relops)
requirements:
  - pygal (charts) and jinja2 (HTML) on the controller
options:
  dest:
    description: The directory to write the reports into; created when missing.
    type: path
    required: true
  reports:
    description: Which reports to write.
    type: list
    elements: str
    choices: [dashboard, cfr, pir, runbook, automation, pipeline, calibration]
    default: [dashboard, cfr, pir, runbook, automation, pipeline, calibration]
  formats:
    description: Which formats to write.
    type: list
    elements: str
    choices: [html, md, json]
    default: [html, md, json]
  environment:
    description: The environment whose deployments the reports cover.
    type: str
    default: production
  service:
    description: Only this service.
    type: str
  team:
    description: Only this team.
    type: str
  window:
    description: The last 7, 30 or 90 days (default V(30d) when O(start) and O(end) are not given).
    type: str
    choices: [7d, 30d, 90d]
  start:
    description: The first day (YYYY-MM-DD) of the window; needs O(end).
    type: str
  end:
    description: The last day (YYYY-MM-DD, included) of the window; needs O(start).
    type: str
  timezone:
    description: The IANA time zone whose midnights bound days, weeks and months.
    type: str
    default: UTC
  granularity:
    description: The period of the trends.
    type: str
    choices: [day, week, month]
    default: week
  link_window_hours:
    description: How long after a deployment an incident on its CI still counts against it.
    type: int
    default: 24
  audit_path:
    description:
      - The audit trail (its live file; rotated files beside it are read too). Defaults to
        E(RELOPS_AUDIT_PATH), then the audit callback's default path, when it exists. Without a trail
        the reports that need it have empty tables.
    type: path
  deployment_ids:
    description: The deployments to review in the V(pir) report.
    type: list
    elements: int
    default: []
  release_ids:
    description: The releases (release record ids) to review in the V(pir) report, besides O(deployment_ids).
    type: list
    elements: str
    default: []
  runbook_root:
    description: The directory relative runbook paths are resolved against.
    type: path
  runbook_max_age_hours:
    description:
      - Within how many hours after a deployment its runbook must be updated. Until that period ends a
        deployment without an update is V(pending), not a violation.
    type: int
    default: 48
  slow_task_seconds:
    description: Tasks slower than this are anomalies in the V(pir) report.
    type: float
    default: 300.0
  exemptions:
    description:
      - Exemptions used, each a dict with C(used_at) (or C(granted_at)) as RFC 3339, for the
        V(calibration) report. Optional input; the governance capability owns exemption records.
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Builds the reports and reports which files would change, without writing.
  diff_mode:
    support: partial
    details: Lists the files written.
seealso:
  - module: relops.release.dora_metrics
  - module: relops.release.incident
  - module: relops.release.release_review
"""

EXAMPLES = r"""
- name: Monthly delivery reports for the last 90 days
  relops.release.release_report:
    dest: "{{ playbook_dir }}/reports/2026-03"
    window: 90d
    granularity: month
  run_once: true

- name: Review one deployment, Markdown only, with the trail of an AWX job
  relops.release.release_report:
    dest: "{{ playbook_dir }}/reviews"
    reports: [pir]
    formats: [md]
    deployment_ids: ["{{ deployment.deployment_id }}"]
    audit_path: /var/log/relops/audit.jsonl
  run_once: true

- name: Review a rolled-back release with the feedback and actions recorded for it
  relops.release.release_report:
    dest: /srv/reports/reviews
    reports: [pir]
    release_ids: [payments-api@2.4.0/production/9f2c0d6c4b4e]
  run_once: true
"""

RETURN = r"""
files:
  description: The path of each report in each format.
  returned: success
  type: dict
  sample:
    dashboard:
      html: /srv/reports/dashboard.html
      md: /srv/reports/dashboard.md
      json: /srv/reports/dashboard.json
written:
  description: The files written (or, in check mode, that would be), because they were new or changed.
  returned: success
  type: list
  elements: str
reports:
  description: Per report, its title and how many sections, charts and tables it holds.
  returned: success
  type: dict
  sample:
    dashboard:
      title: Delivery dashboard
      sections: 6
      charts: 3
      tables: 3
"""
