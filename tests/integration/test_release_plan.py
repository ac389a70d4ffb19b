"""relops.release.release_plan and playbooks/plan_review.yml through real ansible-playbook runs."""

from __future__ import annotations

import json
import os
from typing import Any, Dict

import icalendar
import yaml
from fixtures.playbooks import Ansible

PLAN = {
    "name": "Retail roadmap 2027",
    "buffer_days": 5,
    "calendars": [
        {
            "type": "windows",
            "name": "governance",
            "windows": [
                {
                    "name": "peak: winter sale",
                    "kind": "blackout",
                    "start": "2027-02-01",
                    "end": "2027-02-01",
                    "scope": {"business_unit": ["retail"]},
                }
            ],
        }
    ],
    "releases": [
        {
            "id": "core-27.1",
            "class": "emergency",
            "quarter": "2027-Q1",
            "business_unit": "platform",
            "start": "2027-01-18",
            "cis": ["db01"],
        },
        {
            "id": "payments-27.1",
            "title": "Payments with new HSM",
            "class": "operational",
            "quarter": "2027-Q1",
            "business_unit": "retail",
            "start": "2027-02-01",
            "end": "2027-02-02",
            "depends_on": ["core-27.1"],
            "milestones": [{"name": "go/no-go", "date": "2027-01-30"}],
            "vendors": [{"vendor": "acme", "delivery": "HSM firmware", "date": "2027-01-20", "buffer_days": 7}],
            "scope": [{"id": "PCI-4.0", "type": "compliance", "deadline": "2027-02-10"}],
            "cis": ["payments-api"],
        },
        {
            "id": "dbpatch-27.1",
            "class": "emergency",
            "quarter": "2027-Q1",
            "business_unit": "platform",
            "start": "2027-02-02",
            "cis": ["db01"],
        },
    ],
}

CMDB_PLAY = """
- name: CMDB
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The database host
      relops.release.cmdb_ci:
        ci_class: cmdb_ci_linux_server
        name: db01
    - name: The payments application runs on it
      relops.release.cmdb_ci:
        ci_class: cmdb_ci_appl
        name: payments-api
        relations:
          - type: Runs on::Runs
            target: db01
"""

PLAN_PLAY = """
- name: Plan
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Review
      relops.release.release_plan:
        src: "{{ plan_file }}"
        as_of: "2026-11-26"
        vendor_moves: "{{ moves | default([]) }}"
        ical_dest: "{{ out }}/roadmap.ics"
        markdown_dest: "{{ out }}/roadmap.md"
        html_dest: "{{ out }}/roadmap.html"
        fail_on: "{{ fail_on | default('never') }}"
      register: review
      ignore_errors: true
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ review | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def _write_plan(ansible: Ansible, plan: Dict[str, Any], name: str = "plan.yml") -> str:
    path = os.path.join(ansible.workdir, name)
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(plan, handle)
    return path


def _review(ansible: Ansible, plan_file: str, *extra: str) -> Dict[str, Any]:
    playbook = ansible.write_playbook(PLAN_PLAY, "plan-play.yml")
    result_file = os.path.join(ansible.workdir, "review.json")
    run = ansible.playbook(
        playbook,
        "-e",
        "plan_file=%s result_file=%s out=%s" % (plan_file, result_file, os.path.join(ansible.workdir, "out")),
        *extra,
    )
    assert run.returncode == 0, run.report
    with open(result_file, encoding="utf-8") as handle:
        return json.load(handle)


def _cmdb(ansible: Ansible) -> None:
    run = ansible.playbook(ansible.write_playbook(CMDB_PLAY, "cmdb.yml"))
    assert run.returncode == 0, run.report


def test_plan_review_finds_conflicts_through_the_cmdb_and_exports(ansible: Ansible) -> None:
    _cmdb(ansible)
    plan_file = _write_plan(ansible, PLAN)
    checked = _review(ansible, plan_file, "--check")
    assert checked["changed"] is True and len(checked["exports_written"]) == 3
    assert not os.path.exists(os.path.join(ansible.workdir, "out")), "check mode wrote nothing"

    first = _review(ansible, plan_file)
    assert first["changed"] is True
    assert first["order"] == ["core-27.1", "payments-27.1", "dbpatch-27.1"]
    conflicts = [f for f in first["findings"] if f["kind"] == "ci_conflict"]
    assert [sorted(f["releases"]) for f in conflicts] == [["dbpatch-27.1", "payments-27.1"]]
    assert conflicts[0]["details"] == {"same": [], "related": ["db01", "payments-api"]}
    peaks = [f for f in first["findings"] if f["kind"] == "calendar"]
    assert [f["releases"] for f in peaks] == [["payments-27.1"]] and "peak: winter sale" in peaks[0]["message"]
    payments = next(r for r in first["releases"] if r["id"] == "payments-27.1")
    assert payments["governance"]["approvals"] == ["change manager"]

    with open(os.path.join(ansible.workdir, "out", "roadmap.ics"), "rb") as handle:
        calendar = icalendar.Calendar.from_ical(handle.read())
    assert {str(e["uid"]) for e in calendar.walk("VEVENT")} >= {
        "core-27.1@relops.release",
        "payments-27.1@relops.release",
        "payments-27.1.vendor.0@relops.release",
        "payments-27.1.deadline.PCI-4.0@relops.release",
    }
    with open(os.path.join(ansible.workdir, "out", "roadmap.md"), encoding="utf-8") as handle:
        assert "related CIs db01, payments-api" in handle.read()

    again = _review(ansible, plan_file)
    assert again["changed"] is False and again["exports_written"] == []

    moved = _review(
        ansible, plan_file, "-e", '{"moves": [{"vendor": "acme", "date": "2027-02-06"}]}', "-e", "fail_on=error"
    )
    assert moved["failed"] is True and "PCI-4.0" in moved["msg"]
    assert [m["release"] for m in moved["moves"]] == ["payments-27.1"]
    assert moved["moves"][0]["new_start"] == "2027-02-13T00:00:00.000000Z"


def test_bad_plans_fail_naming_the_problem(ansible: Ansible) -> None:
    _cmdb(ansible)
    unknown = json.loads(json.dumps(PLAN))
    unknown["releases"][2]["cis"] = ["db01", "db99"]
    result = _review(ansible, _write_plan(ansible, unknown, "unknown.yml"))
    assert result["failed"] is True
    assert "plan.releases[2].cis[1]: CI 'db99' of release dbpatch-27.1 is not in the CMDB" in result["msg"]

    cycle = json.loads(json.dumps(PLAN))
    cycle["releases"][0]["depends_on"] = ["dbpatch-27.1"]
    cycle["releases"][2]["depends_on"] = ["payments-27.1"]
    result = _review(ansible, _write_plan(ansible, cycle, "cycle.yml"))
    assert result["failed"] is True and "dependency cycle" in result["msg"]
    assert all(rid in result["msg"] for rid in ("core-27.1", "payments-27.1", "dbpatch-27.1"))

    bad_date = json.loads(json.dumps(PLAN))
    bad_date["releases"][1]["vendors"][0]["date"] = "Jan 20, 2027"
    result = _review(ansible, _write_plan(ansible, bad_date, "date.yml"))
    assert result["failed"] is True
    assert "plan.releases[1].vendors[0].date: 'Jan 20, 2027' is not a date" in result["msg"]
    assert not os.path.exists(os.path.join(ansible.workdir, "out")), "a bad plan exports nothing"


def test_the_plan_review_playbook(ansible: Ansible) -> None:
    plan = json.loads(json.dumps(PLAN))
    for release in plan["releases"]:
        release.pop("cis")
    plan_file = _write_plan(ansible, plan)
    out = os.path.join(ansible.workdir, "review")
    run = ansible.playbook("relops.release.plan_review", "-e", "plan_file=%s plan_out=%s" % (plan_file, out))
    assert run.returncode == 0, run.report
    assert "core-27.1, payments-27.1, dbpatch-27.1" in run.stdout
    assert sorted(os.listdir(out)) == ["roadmap.html", "roadmap.ics", "roadmap.md"]
    # Without plan_out the exports go to the state directory, never into the installed collection (issue 21).
    run = ansible.playbook("relops.release.plan_review", "-e", "plan_file=%s" % plan_file)
    assert run.returncode == 0, run.report
    state_out = os.path.join(ansible.workdir, "state", "relops", "plan-review")
    assert sorted(os.listdir(state_out)) == ["roadmap.html", "roadmap.ics", "roadmap.md"]
    playbooks = os.path.join(ansible.collections_path, "ansible_collections", "relops", "release", "playbooks")
    assert not os.path.exists(os.path.join(playbooks, "plan-review"))
    run = ansible.playbook("relops.release.plan_review", "-e", "plan_file=plans/2027.yml")
    assert run.returncode != 0 and "must be absolute" in run.output, run.report
    doc = ansible.doc("relops.release.release_plan")
    assert doc.returncode == 0 and "vendor_moves" in doc.stdout, doc.report
