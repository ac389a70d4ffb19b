"""Change-gate figures (issue 5), each against a baseline measured in the same run. Prints one JSON object.

- decision: the change gate's whole evaluation in-process (every check, the calendar read and expanded, the
  exemptions, the inputs digest) against a calendar of five years of weekly freezes plus yearly holidays and a
  ledger of 10,000 deployments; median milliseconds (target < 100) and the ratio against the same evaluation
  with no calendar and an empty ledger.
- playbook: one ansible-playbook process running relops.release.change_gate once against the same process
  running one ansible.builtin.debug task; ratio of medians (target < 1.5). Also, for reference, the gate
  play's first run after its calendar or policy changed (empty controller cache) against the same baseline.

Uses the collection as `make install` put it in build/collections. The default run is the issue's headline
figure and takes about a minute:

    .venv/bin/python benchmarks/governance.py
    .venv/bin/python benchmarks/governance.py --years 10 --deployments 50000 --decisions 50 --repeats 5
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
# benchmarks/calendar_eval.py would shadow the standard library's calendar module, which icalendar imports.
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != HERE]
sys.path.insert(0, os.path.join(REPO, "build", "src"))
BIN = os.path.dirname(sys.executable)

from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.governance import gate  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.ledger import (  # noqa: E402
    open_ledger,
    parse_ledger_url,
)
from ansible_collections.relops.release.plugins.plugin_utils.policy import (  # noqa: E402
    canonical_digest,
    load_policy,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor  # noqa: E402

UTC = datetime.timezone.utc


def write_calendar(path: str, first_year: int, years: int) -> None:
    """Every Friday 18:00 to Monday 06:00 (Europe/Berlin) as its own event, plus yearly holiday freezes."""
    events: List[str] = []
    day = datetime.date(first_year, 1, 1)
    while day.weekday() != 4:
        day += datetime.timedelta(days=1)
    index = 0
    while day.year < first_year + years:
        end = day + datetime.timedelta(days=3)
        events.append(
            "BEGIN:VEVENT\r\nUID:freeze-%d@bench\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Weekend freeze\r\n"
            "DTSTART;TZID=Europe/Berlin:%s\r\nDTEND;TZID=Europe/Berlin:%s\r\nEND:VEVENT\r\n"
            % (index, day.strftime("%Y%m%dT180000"), end.strftime("%Y%m%dT060000"))
        )
        day += datetime.timedelta(days=7)
        index += 1
    for name, month, first, last in (("New year", 1, 1, 2), ("Year end", 12, 20, 31), ("Black Friday", 11, 24, 30)):
        events.append(
            "BEGIN:VEVENT\r\nUID:%s@bench\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:%s\r\n"
            "DTSTART;VALUE=DATE:%d%02d%02d\r\nDTEND;VALUE=DATE:%d%02d%02d\r\nRRULE:FREQ=YEARLY;COUNT=%d\r\nEND:VEVENT\r\n"
            % (name.replace(" ", "-"), name, first_year, month, first, first_year, month, last, years)
        )
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//relops//bench//EN\r\n%sEND:VCALENDAR\r\n" % "".join(events)
        )


def fill_ledger(url: str, deployments: int) -> None:
    actor = current_actor(environ={"RELOPS_RUN_ID": "bench-history"})
    with open_ledger(parse_ledger_url(url)) as ledger, ledger.backend.transaction(write=True) as cursor:
        ledger._touch_run(cursor, actor, format_timestamp(datetime.datetime.now(UTC)))
        for number in range(deployments):
            moment = datetime.datetime(2022, 1, 1, tzinfo=UTC) + datetime.timedelta(hours=4 * number)
            cursor.execute(
                "INSERT INTO deployments (run_id, service, version, environment, status, started_at, finished_at,"
                " details) VALUES (?, ?, ?, ?, ?, ?, ?, '{}')",
                (
                    actor.run_id,
                    "svc-%d" % (number % 20),
                    "1.%d.0" % number,
                    ("staging", "production")[number % 2],
                    "failed" if number % 17 == 0 else "successful",
                    format_timestamp(moment),
                    format_timestamp(moment + datetime.timedelta(minutes=10)),
                ),
            )


def write_roster(path: str, now: datetime.datetime) -> None:
    shifts = [
        {
            "who": "oncall-%d" % hour,
            "start": format_timestamp(now + datetime.timedelta(hours=hour - 12)),
            "end": format_timestamp(now + datetime.timedelta(hours=hour - 11)),
        }
        for hour in range(24)
    ]
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"shifts": shifts}, handle)


def one_decision(url: str, sources: List[Dict[str, Any]], roster: str, now: datetime.datetime) -> str:
    """What change_gate does per attempt, without Ansible around it."""
    policy = load_policy()
    args = {
        "service": "svc-3",
        "environment": "production",
        "version": "9.9.9",
        "planned_start": format_timestamp(now),
        "planned_end": format_timestamp(now + datetime.timedelta(hours=1)),
        "peer_approver": "dev.two",
        "readiness": {
            "rollback": {"not_needed": "flag-guarded"},
            "communication": [{"at": format_timestamp(now - datetime.timedelta(hours=1)), "channel": "#svc"}],
            "roster": roster,
            "runbook": "https://runbooks.example.com/svc",
        },
    }
    with open_ledger(parse_ledger_url(url)) as ledger:
        ctx = gate.GateContext(
            policy=policy, args=args, now=now, route="peer", change_type="normal", requester="dev.one", ledger=ledger
        )
        findings = [gate.check_approval(ctx), gate.check_window(ctx)]
        findings.extend(gate.check_blackout(ctx, sources, {"service": "svc-3", "environment": "production"}))
        findings += [gate.check_conflicts(ctx), gate.check_stabilization(ctx), gate.check_readiness(ctx)]
        findings += [gate.check_lock(ctx, "bench"), gate.check_segregation(ctx)]
        gate.apply_exemptions(ctx, findings, {"service": "svc-3", "team": None}, lambda row: None)
        ledger.finished_deployment_outcomes("svc-3", "production", 20)
        canonical_digest({"policy": policy.digest, "inputs": ctx.inputs})
    return gate.decide(findings)


def median_ms(count: int, action: Any) -> float:
    timings = []
    for _number in range(count):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000.0)
    return round(statistics.median(timings), 2)


def decision_figure(work: str, years: int, deployments: int, count: int) -> Dict[str, Any]:
    now = datetime.datetime(2026 + years // 2, 6, 10, 9, 0, tzinfo=UTC)
    now += datetime.timedelta(days=(2 - now.weekday()) % 7)  # a Wednesday morning mid-calendar
    calendar = os.path.join(work, "freezes.ics")
    write_calendar(calendar, 2026, years)
    roster = os.path.join(work, "roster.json")
    write_roster(roster, now)
    full = "sqlite:///" + os.path.join(work, "full.db").lstrip("/")
    empty = "sqlite:///" + os.path.join(work, "empty.db").lstrip("/")
    fill_ledger(full, deployments)
    open_ledger(parse_ledger_url(empty)).close()
    sources = [{"type": "ics", "path": calendar, "kind": "blackout"}]
    started = time.perf_counter()
    decision = one_decision(full, sources, roster, now)
    first = round((time.perf_counter() - started) * 1000.0, 2)
    if decision != "allow":
        raise SystemExit("the benchmark's decision should be allow on a free Wednesday, got %s" % decision)
    loaded = median_ms(count, lambda: one_decision(full, sources, roster, now))
    baseline = median_ms(count, lambda: one_decision(empty, [], roster, now))
    return {
        "decision": decision,
        "years_of_weekly_freezes": years,
        "deployments": deployments,
        "first_decision_ms_parsing_policy_and_calendar": first,
        "median_ms": loaded,
        "target_ms": 100,
        "baseline_no_calendar_empty_ledger_ms": baseline,
        "ratio_vs_baseline": round(loaded / baseline, 2) if baseline else None,
    }


def run_play(path: str, env: Dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), path], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit("ansible-playbook failed:\n%s%s" % (done.stdout[-3000:], done.stderr[-2000:]))
    return elapsed


def playbook_figure(work: str, repeats: int) -> Dict[str, Any]:
    now = datetime.datetime.now(UTC)
    roster = os.path.join(work, "play-roster.json")
    write_roster(roster, now)
    header = "- name: Bench\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
    gate_play = os.path.join(work, "gate.yml")
    with open(gate_play, "w", encoding="utf-8") as handle:
        handle.write(
            header
            + textwrap.indent(
                textwrap.dedent(
                    """\
            - name: Gate
              relops.release.change_gate:
                service: svc-3
                version: 9.9.9
                route: automatic
                calendars: [{type: ics, path: %s, kind: blackout}]
                readiness:
                  rollback: {not_needed: flag-guarded}
                  communication: [{at: "2020-01-01T00:00:00Z", channel: "#svc"}]
                  roster: %s
                  runbook: https://runbooks.example.com/svc
                fail_on_deny: false
            """
                    % (os.path.join(work, "freezes.ics"), roster)
                ),
                "    ",
            )
        )
    debug_play = os.path.join(work, "debug.yml")
    with open(debug_play, "w", encoding="utf-8") as handle:
        handle.write(header + "    - name: Debug\n      ansible.builtin.debug:\n        msg: hello\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RELOPS_"))}
    env.update(
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "collections"),
        ANSIBLE_INVENTORY=os.path.join(REPO, "inventories", "local", "hosts.yml"),
        ANSIBLE_LOCAL_TEMP=os.path.join(work, ".ansible-tmp"),
        RELOPS_LEDGER_URL="sqlite:///" + os.path.join(work, "full.db").lstrip("/"),
        # The controller cache (plugin_utils/disk_cache.py) of this run only, so no earlier run's entries count.
        RELOPS_CACHE_DIR=os.path.join(work, "cache"),
        PATH=BIN + os.pathsep + env.get("PATH", ""),
    )
    # Warm the byte-code caches for both before timing; the gate's run also fills the controller cache
    # (the calendar's expansion, the policy's validation), as any earlier gate run in a pipeline would.
    run_play(gate_play, env)
    run_play(debug_play, env)
    gate_times, debug_times = [], []
    for _round in range(repeats):
        debug_times.append(run_play(debug_play, env))
        gate_times.append(run_play(gate_play, env))
    # For reference: the first gate run after the calendar or policy changed (an empty controller cache).
    first_times = [
        run_play(gate_play, dict(env, RELOPS_CACHE_DIR=os.path.join(work, "cold-%d" % number)))
        for number in range(repeats)
    ]
    gate_median, debug_median = statistics.median(gate_times), statistics.median(debug_times)
    first_median = statistics.median(first_times)
    return {
        "gate_play_s": round(gate_median, 3),
        "debug_play_s": round(debug_median, 3),
        "ratio": round(gate_median / debug_median, 3),
        "target_ratio": 1.5,
        "repeats": repeats,
        "gate_play_empty_cache_s": round(first_median, 3),
        "ratio_empty_cache": round(first_median / debug_median, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--deployments", type=int, default=10000)
    parser.add_argument("--decisions", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relops-governance-bench-") as work:
        result = {
            "decision": decision_figure(work, options.years, options.deployments, options.decisions),
            "playbook": playbook_figure(work, options.repeats),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
