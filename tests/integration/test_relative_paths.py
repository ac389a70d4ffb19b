"""One rule for relative paths (docs/paths.md): every controller-side option reads and writes relative to
the playbook's directory, never the current one. The playbook lives in play/, ansible-playbook runs from
the directory above it, and every file the tasks name exists only beside the playbook."""

from __future__ import annotations

import json
import os
import shutil

import yaml
from fixtures.governance import write_cobertura, write_junit, write_yaml
from fixtures.playbooks import REPO, Ansible

FREEZE = {
    "kind": "blackout",
    "timezone": "UTC",
    "windows": [{"name": "always frozen", "start": "2000-01-01", "end": "2100-12-31"}],
}

PLAY = """
- name: Relative paths
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Package the payload beside the playbook
      relops.release.package:
        src: payload
        manifest: manifest.json
        dest: out
      register: built
    - name: Verify the package by its relative path
      relops.release.artifact_verify:
        path: "out/{{ built.name }}"
        checksum: "{{ built.digest }}"
      register: verified
    - name: Blackout calendar by relative path
      relops.release.blackout_check:
        calendars: [{type: yaml, path: calendars/freeze.yml}]
      register: blackout
    - name: Risk with a relative policy and relative reports
      relops.release.risk_assess:
        service: payments-api
        release_class: operational
        policy: policy.yml
        junit: [reports/unit-*.xml]
        coverage: [reports/coverage.xml]
      register: risk
    - name: Quality gate with relative reports
      relops.release.quality_gate:
        subject: payments-api 1.0.0
        release_class: operational
        junit: [reports/unit-*.xml]
        coverage: [reports/coverage.xml]
        fail_on_deny: false
      register: quality
    - name: Change gate reads its calendar without base_dir
      relops.release.change_gate:
        service: payments-api
        # Not enforced, so the caller may name the route (production would want a release record).
        environment: staging
        version: 1.0.0
        route: automatic
        policy: policy.yml
        calendars: [{type: yaml, path: calendars/freeze.yml}]
        readiness: {roster: oncall.yml}
        fail_on_deny: false
      register: gate
    - name: Release plan from plans/, its calendar and exports relative to the playbook
      relops.release.release_plan:
        src: plans/plan.yml
        as_of: "2026-01-01"
        markdown_dest: out/roadmap.md
      register: plan
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'verified': verified, 'blackout': blackout, 'risk': risk, 'quality': quality,
                      'gate': gate, 'plan': plan} | to_nice_json }}"
        dest: "{{ playbook_dir }}/results.json"
        mode: "0600"
"""

PLAN = {
    "name": "Relative",
    "calendars": [{"type": "yaml", "path": "calendars/freeze.yml"}],
    "releases": [
        {"id": "r1", "class": "emergency", "quarter": "2027-Q1", "business_unit": "retail", "start": "2027-02-01"}
    ],
}


def test_every_relative_path_is_read_from_the_playbook_directory(ansible: Ansible) -> None:
    play = os.path.join(ansible.workdir, "play")
    shutil.copytree(os.path.join(REPO, "examples", "demo_app", "app"), os.path.join(play, "payload"))
    shutil.copy(os.path.join(REPO, "examples", "demo_app", "manifest.json"), os.path.join(play, "manifest.json"))
    shutil.copy(os.path.join(REPO, "examples", "policies", "local.yml"), os.path.join(play, "policy.yml"))
    for folder in ("calendars", "reports", "plans"):
        os.makedirs(os.path.join(play, folder))
    write_yaml(os.path.join(play, "calendars", "freeze.yml"), FREEZE)
    write_yaml(
        os.path.join(play, "oncall.yml"),
        {"shifts": [{"who": "alice", "start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z"}]},
    )
    write_junit(os.path.join(play, "reports", "unit-a.xml"), tests=40)
    write_cobertura(os.path.join(play, "reports", "coverage.xml"), covered=90, valid=100)
    with open(os.path.join(play, "plans", "plan.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(PLAN, handle)
    playbook = os.path.join(play, "site.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write(PLAY)

    run = ansible.playbook(playbook)  # the current directory is ansible.workdir, above play/

    assert run.returncode == 0, run.report
    with open(os.path.join(play, "results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    built = [name for name in os.listdir(os.path.join(play, "out")) if name.endswith(".tar.gz")]
    assert len(built) == 1 and not os.path.exists(os.path.join(ansible.workdir, "out"))
    assert results["verified"]["verified"] is True, results["verified"]
    assert results["blackout"]["decision"] == "deny" and "always frozen" in str(results["blackout"]["reasons"])
    assert results["risk"]["policy"]["version"] == "2026.4", results["risk"]["policy"]
    assert "tests" in json.dumps(results["risk"]["evidence"]) and "unit-a.xml" in json.dumps(results["risk"])
    assert results["quality"]["tests"]["total"]["tests"] == 40, results["quality"]
    assert "always frozen" in json.dumps(results["gate"]["reasons"]), results["gate"]
    assert "roster" not in json.dumps(results["gate"]["reasons"]), results["gate"]  # read, and it covers now
    assert "always frozen" in json.dumps(results["plan"]["findings"]), results["plan"]
    assert os.path.exists(os.path.join(play, "out", "roadmap.md"))
