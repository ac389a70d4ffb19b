"""relops.release.blackout_check through real ansible-playbook runs: local files, an ICS served over HTTP
on 127.0.0.1, and ServiceNow schedules on the stand-in."""

from __future__ import annotations

import json
import os
import shutil
import socket
from typing import Any, Dict, List

from fixtures.calendar_http import CalendarServer
from fixtures.playbooks import Ansible
from servicenow.server import ServiceNowStandIn

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples", "calendars")

CHECK_PLAY = """
- name: Blackout check
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ask the calendars
      relops.release.blackout_check: "{{ check_args }}"
      register: answer
      ignore_errors: "{{ tolerate | default(false) }}"
    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ answer | to_nice_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


def run_check(ansible: Ansible, args: Dict[str, Any], *extra: str, env: Dict[str, str] | None = None) -> Dict[str, Any]:
    """Run the play with ``args`` as the task's arguments and return the registered result.

    The task ignores errors so a failed check is still registered; the play itself must succeed."""
    playbook = ansible.write_playbook(CHECK_PLAY, "check.yml")
    result_file = os.path.join(ansible.workdir, "result.json")
    if os.path.exists(result_file):
        os.unlink(result_file)
    variables = os.path.join(ansible.workdir, "vars.json")
    with open(variables, "w", encoding="utf-8") as handle:
        json.dump({"check_args": args, "result_file": result_file, "tolerate": True}, handle)
    run = ansible.playbook(playbook, "-e", "@" + variables, *extra, env=env)
    assert run.returncode == 0, run.report
    with open(result_file, encoding="utf-8") as handle:
        result: Dict[str, Any] = json.load(handle)
    return result


def copy_examples(ansible: Ansible) -> None:
    target = os.path.join(ansible.workdir, "calendars")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(EXAMPLES, target)


EXAMPLE_SOURCES: List[Dict[str, Any]] = [
    {"type": "ics", "path": "calendars/release-freezes.ics"},
    {"type": "yaml", "path": "calendars/freezes.yml"},
    {"type": "yaml", "path": "calendars/maintenance.yml"},
]


def names(hits: List[Dict[str, Any]], kind: str = "blackout") -> List[str]:
    return sorted({hit["name"] for hit in hits if hit["kind"] == kind})


def test_local_calendars_deny_a_window_over_christmas_and_name_the_freeze(ansible: Ansible) -> None:
    copy_examples(ansible)
    args = {
        "calendars": EXAMPLE_SOURCES,
        "timezone": "Europe/Berlin",
        "service": "payments",
        "environment": "prod",
        "now": "2026-12-22T10:00:00+01:00",
        "planned_start": "2026-12-24T20:00",
        "planned_end": "2026-12-24T22:00",
    }
    answer = run_check(ansible, args)
    assert answer["decision"] == "deny" and answer["changed"] is False
    assert names(answer["overlapping"]) == ["Christmas freeze"]
    assert any("overlaps blackout 'Christmas freeze'" in reason for reason in answer["reasons"])
    assert answer["in_blackout"] is False
    # The window fits the Tuesday/Thursday maintenance slot, so only the freeze denies it.
    assert answer["outside_maintenance"] is False
    # Next slot free of freezes: Tuesday 2026-12-29 20:00 Berlin (the 27th is frozen, the 31st is month-end).
    assert answer["next_allowed_start"] == "2026-12-29T19:00:00.000000Z"


def test_local_calendars_allow_a_window_inside_maintenance_and_check_mode_answers_the_same(ansible: Ansible) -> None:
    copy_examples(ansible)
    args = {
        "calendars": EXAMPLE_SOURCES,
        "timezone": "Europe/Berlin",
        "service": "search",
        "environment": "prod",
        "ci": ["web01"],
        "now": "2026-06-01T09:00:00Z",
        "planned_start": "2026-06-02T20:30",
        "planned_end": "2026-06-02T22:00",
    }
    answer = run_check(ansible, args)
    assert answer["decision"] == "allow" and answer["reasons"] == []
    assert answer["outside_maintenance"] is False
    assert answer["next_allowed_start"] == "2026-06-02T18:30:00.000000Z"
    checked = run_check(ansible, args, "--check")
    assert {k: checked[k] for k in ("decision", "overlapping", "next_allowed_start")} == {
        k: answer[k] for k in ("decision", "overlapping", "next_allowed_start")
    }
    # Outside maintenance on a Wednesday: deny with that reason, and the next Thursday slot offered.
    wednesday = run_check(ansible, dict(args, planned_start="2026-06-03T20:30", planned_end="2026-06-03T22:00"))
    assert wednesday["decision"] == "deny" and wednesday["outside_maintenance"] is True
    assert wednesday["reasons"] == ["the planned window is outside every maintenance window"]
    assert wednesday["next_allowed_start"] == "2026-06-04T18:00:00.000000Z"


def test_now_inside_the_dst_weekend_freeze_and_fail_on_deny(ansible: Ansible) -> None:
    copy_examples(ansible)
    # 2026-03-29 06:30 CEST: the Friday-to-Monday freeze runs to 06:00 on Monday, so Sunday morning is frozen.
    args = {
        "calendars": EXAMPLE_SOURCES[:1],
        "timezone": "Europe/Berlin",
        "now": "2026-03-29T06:30",
        "fail_on_deny": True,
    }
    answer = run_check(ansible, args)
    assert answer["failed"] is True and answer["in_blackout"] is True
    assert "blackout_check denies: in blackout 'Weekend freeze' now" in answer["msg"]
    # Exact duration: the instance starting 2026-03-27 18:00 CET lasts 60 elapsed hours, to 07:00 CEST Monday.
    assert [(h["start"], h["end"]) for h in answer["current"]] == [
        ("2026-03-27T17:00:00.000000Z", "2026-03-30T05:00:00.000000Z")
    ]


def test_ics_over_http_and_an_unreachable_url_fails_closed(ansible: Ansible, calendar_server: CalendarServer) -> None:
    with open(os.path.join(EXAMPLES, "release-freezes.ics"), encoding="utf-8") as handle:
        url = calendar_server.publish("freezes.ics", handle.read())
    args = {
        "calendars": [{"type": "ics", "url": url, "timeout": 10}],
        "timezone": "Europe/Berlin",
        "now": "2026-07-01T10:00",
    }
    answer = run_check(ansible, args)
    assert calendar_server.requests == ["/freezes.ics"]
    assert answer["decision"] == "deny" and names(answer["current"]) == ["Quarterly business review"]
    assert answer["next_allowed_start"] == "2026-07-01T15:00:00.000000Z"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    dead = "http://127.0.0.1:%d/freezes.ics" % closed
    answer = run_check(
        ansible,
        dict(
            args,
            now="2026-07-02T10:00",
            calendars=[{"type": "ics", "url": url}, {"type": "ics", "url": dead, "timeout": 3}],
        ),
    )
    assert answer.get("failed") is not True
    assert answer["decision"] == "deny" and answer["in_blackout"] is False
    assert answer["unavailable"] and dead in answer["unavailable"][0]
    assert answer["reasons"] == ["calendar unavailable, failing closed: " + answer["unavailable"][0]]

    missing = calendar_server.url + "/nope.ics"
    answer = run_check(ansible, dict(args, calendars=[{"type": "ics", "url": missing}]))
    assert answer["decision"] == "deny" and "answered HTTP 404" in answer["reasons"][0]


def test_bad_calendars_fail_the_task_naming_the_problem(ansible: Ansible, calendar_server: CalendarServer) -> None:
    broken = calendar_server.publish("broken.ics", "BEGIN:VCALENDAR\nthis is not ical\n")
    answer = run_check(ansible, {"calendars": [{"type": "ics", "url": broken}]})
    assert answer["failed"] is True and "malformed iCalendar data" in answer["msg"] and "broken.ics" in answer["msg"]
    answer = run_check(ansible, {"calendars": [{"type": "windows", "windows": []}], "timezone": "Europe/Atlantis"})
    assert answer["failed"] is True and "unknown time zone 'Europe/Atlantis'" in answer["msg"]
    until = calendar_server.publish(
        "until.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:u\r\nSUMMARY:Bad until\r\n"
        "DTSTART;VALUE=DATE:20260105\r\nRRULE:FREQ=WEEKLY;UNTIL=20260601T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    answer = run_check(ansible, {"calendars": [{"type": "ics", "url": until}]})
    assert answer["failed"] is True and "RRULE UNTIL is a date-time but DTSTART is a date" in answer["msg"]
    answer = run_check(
        ansible, {"calendars": [{"type": "windows", "windows": []}], "planned_start": "2026-01-01T00:00Z"}
    )
    assert answer["failed"] is True and "give both planned_start and planned_end" in answer["msg"]


def test_servicenow_schedules_on_the_stand_in(ansible: Ansible, servicenow: ServiceNowStandIn) -> None:
    blackout = servicenow.insert(
        "cmn_schedule_blackout", {"name": "Year end freeze", "type": "blackout", "time_zone": "America/New_York"}
    )
    servicenow.insert(
        "cmn_schedule_span",
        {
            "schedule": blackout["sys_id"],
            "name": "Year end",
            "start_date_time": "20261218T170000",
            "end_date_time": "20270104T080000",
        },
    )
    env = {"SN_HOST": servicenow.url, "SN_USERNAME": "admin", "SN_PASSWORD": "admin-secret"}
    args = {
        "calendars": [{"type": "servicenow", "schedule": "Year end freeze", "scope": {"environment": "prod"}}],
        "environment": "prod",
        "now": "2026-12-18T21:59:00Z",
        "planned_start": "2026-12-18T21:00:00Z",
        "planned_end": "2026-12-18T23:00:00Z",
    }
    answer = run_check(ansible, args, env=env)
    assert answer["decision"] == "deny" and answer["in_blackout"] is False
    assert answer["overlapping"][0]["start"] == "2026-12-18T22:00:00.000000Z"
    assert answer["overlapping"][0]["end"] == "2027-01-04T13:00:00.000000Z"
    assert answer["next_allowed_start"] == "2027-01-04T13:00:00.000000Z"
    staging = run_check(ansible, dict(args, environment="staging"), env=env)
    assert staging["decision"] == "allow" and staging["windows_considered"] == []
    missing = run_check(ansible, dict(args, calendars=[{"type": "servicenow", "schedule": "Nope"}]), env=env)
    assert missing["failed"] is True and "no blackout or maintenance schedule named 'Nope'" in missing["msg"]
    servicenow.stop()
    down = run_check(ansible, args, env=env)
    assert down["decision"] == "deny" and "cannot read schedule 'Year end freeze' from ITSM" in down["reasons"][0]
