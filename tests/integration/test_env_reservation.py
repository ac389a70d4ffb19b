"""relops.release.env_reservation through real ansible-playbook runs, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os

from fixtures.playbooks import Ansible

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

PLAY = """
- name: Reservations
  hosts: localhost
  gather_facts: false
  module_defaults:
    relops.release.env_reservation:
      service: payments-sandbox
  tasks:
    - name: Team A books 09:00-11:00
      relops.release.env_reservation:
        name: team-a
        owner: team-a
        starts_at: "2026-12-01T09:00:00Z"
        ends_at: "2026-12-01T11:00:00+00:00"
      register: first
    - name: The same booking again
      relops.release.env_reservation:
        name: team-a
        owner: team-a
        starts_at: "2026-12-01T10:00:00+01:00"
        duration: 120
      register: again
    - name: Team B asks for an overlapping slot
      relops.release.env_reservation:
        name: team-b
        owner: team-b
        starts_at: "2026-12-01T10:30:00Z"
        duration: 60
      register: overlap
      ignore_errors: true
    - name: Team B asks for the same overlap in check mode
      relops.release.env_reservation:
        name: team-b
        owner: team-b
        starts_at: "2026-12-01T10:30:00Z"
        duration: 60
      register: overlap_check
      check_mode: true
      ignore_errors: true
    - name: Team B takes the slot right after, predicted first
      relops.release.env_reservation:
        name: team-b
        owner: team-b
        starts_at: "2026-12-01T11:00:00Z"
        duration: 60
      register: adjacent_check
      check_mode: true
    - name: Team B takes the slot right after
      relops.release.env_reservation:
        name: team-b
        owner: team-b
        starts_at: "2026-12-01T11:00:00Z"
        duration: 60
      register: adjacent
    - name: Team C on another service wants team A's data name
      relops.release.env_reservation:
        service: orders-sandbox
        name: team-c
        starts_at: "2026-12-01T09:00:00Z"
        duration: 30
        data_name: payments_sandbox_team_a
      register: data_clash
      ignore_errors: true
    - name: Team A gives the sandbox back
      relops.release.env_reservation:
        name: team-a
        state: absent
      register: released
    - name: Releasing again changes nothing
      relops.release.env_reservation:
        name: team-a
        state: absent
      register: released_again
    - name: Now team C's overlapping slot is free
      relops.release.env_reservation:
        name: team-c
        starts_at: "2026-12-01T10:30:00Z"
        ends_at: "2026-12-01T11:00:00Z"
      register: after_release
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'first': first, 'again': again, 'overlap': overlap, 'overlap_check': overlap_check,
                      'adjacent_check': adjacent_check, 'adjacent': adjacent, 'data_clash': data_clash,
                      'released': released, 'released_again': released_again,
                      'after_release': after_release} | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""

BAD_PLAY = """
- name: Bad reservations
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ends before it starts
      relops.release.env_reservation:
        service: s
        name: backwards
        starts_at: "2026-12-01T09:00:00Z"
        ends_at: "2026-12-01T08:00:00Z"
      register: backwards
      ignore_errors: true
    - name: No offset
      relops.release.env_reservation:
        service: s
        name: naive
        starts_at: "2026-12-01 09:00"
        duration: 10
      register: naive
      ignore_errors: true
    - name: Not an identifier
      relops.release.env_reservation:
        service: s
        name: weird
        starts_at: "2026-12-01T09:00:00Z"
        duration: 10
        data_name: "Robert'); DROP TABLE"
      register: injection
      ignore_errors: true
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'backwards': backwards, 'naive': naive, 'injection': injection} | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
"""


def _run(ansible: Ansible, ledger_url: str, play: str) -> dict:
    playbook = ansible.write_playbook(play, "reserve.yml")
    result_file = os.path.join(ansible.workdir, "result.json")
    run = ansible.playbook(playbook, "-e", "result_file=%s" % result_file, env={"RELOPS_LEDGER_URL": ledger_url})
    assert run.returncode == 0, run.report
    with open(result_file, encoding="utf-8") as handle:
        return json.load(handle)


def test_reservations_conflict_isolate_and_release(ansible: Ansible, ledger_url: str) -> None:
    results = _run(ansible, ledger_url, PLAY)
    first = results["first"]
    assert first["changed"] is True
    assert first["data_name"] == "payments_sandbox_team_a"
    assert first["reservation"]["ends_at"] == "2026-12-01T11:00:00.000000Z"
    assert results["again"]["changed"] is False, "the same slot in another offset is the same reservation"

    for key in ("overlap", "overlap_check"):
        refused = results[key]
        assert refused["failed"] is True
        assert "'team-a'" in refused["msg"] and "overlaps" in refused["msg"], refused["msg"]
        assert "2026-12-01T11:00:00.000000Z" in refused["msg"], "the message says when the slot is free"

    assert results["adjacent_check"]["changed"] is True
    assert results["adjacent"]["changed"] is True, "half-open slots: 11:00 may start when 09:00-11:00 ends"
    assert results["adjacent"]["data_name"] == "payments_sandbox_team_b"

    clash = results["data_clash"]
    assert clash["failed"] is True and "payments_sandbox_team_a" in clash["msg"] and "team-a" in clash["msg"]

    assert results["released"]["changed"] is True and results["released"]["reservation"] is None
    assert results["released_again"]["changed"] is False
    assert results["after_release"]["changed"] is True

    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        active = {row["name"]: row for row in ledger.list_reservations("payments-sandbox")}
        history = ledger.list_reservations("payments-sandbox", active_only=False)
    assert sorted(active) == ["team-b", "team-c"]
    assert [row["status"] for row in history if row["name"] == "team-a"] == ["released"]
    assert active["team-b"]["starts_at"] == "2026-12-01T11:00:00.000000Z"
    assert active["team-b"]["owner"] == "team-b"


def test_bad_reservations_are_refused_with_the_fix(ansible: Ansible, ledger_url: str) -> None:
    results = _run(ansible, ledger_url, BAD_PLAY)
    assert "not after it starts" in results["backwards"]["msg"]
    assert "no UTC offset" in results["naive"]["msg"]
    assert "not a usable database or schema name" in results["injection"]["msg"]
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        assert ledger.list_reservations(active_only=False) == []
    doc = ansible.doc("relops.release.env_reservation")
    assert doc.returncode == 0 and "data_name" in doc.stdout, doc.report
