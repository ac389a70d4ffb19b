"""Router and process-manager helpers of the deploy roles: rendering, parsing and planning."""

from __future__ import annotations

import configparser
import json
import os
import sys
import time
from typing import Any

import pytest

from ansible_collections.relops.release.plugins.module_utils.procman import (
    ProcessError,
    Supervisor,
    Systemd,
    check_name,
    read_deadline,
)
from ansible_collections.relops.release.plugins.module_utils.routers import (
    RouterError,
    admin_state,
    haproxy_plan,
    normalize_servers,
    parse_nginx_upstream,
    parse_server_states,
    render_nginx_upstream,
)
from ansible_collections.relops.release.plugins.modules.app_process import check_params

COLUMNS = (
    "be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight"
    " srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state"
    " srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port"
    " srv_check_addr srv_agent_addr srv_agent_port"
)
# HAProxy 2.6's `show servers state app`: web1-blue put in service after `disabled` in the config (admin 4).
STATE_TEXT = (
    "1\n# %s\n" % COLUMNS
    + "3 app 1 web1-blue 10.0.0.11 2 4 1 1 5 1 0 0 8 0 0 0 - 8001 - 0 0 - - 0\n"
    + "3 app 2 web1-green 10.0.0.11 0 5 1 1 5 1 0 0 8 0 0 0 - 8002 - 0 0 - - 0\n"
)


def test_nginx_upstream_round_trips_and_marks_non_ready_servers_down() -> None:
    servers = normalize_servers(
        [
            {"name": "web1-blue", "address": "10.0.0.11:8001", "state": "ready", "weight": 3},
            {"name": "web1-green", "address": "10.0.0.11:8002", "state": "drain"},
            {"name": "web2-blue", "address": "10.0.0.12:8001", "weight": 0},
            {"name": "spare", "address": "10.0.0.13:8001", "backup": True},
        ],
        "nginx",
    )
    text = render_nginx_upstream("app", servers, ["keepalive 8"])
    assert "upstream app {" in text and "    keepalive 8;" in text
    assert "server 10.0.0.11:8001 weight=3; # relops name=web1-blue state=ready" in text
    assert "server 10.0.0.11:8002 weight=1 down; # relops name=web1-green state=drain" in text
    assert "server 10.0.0.12:8001 weight=1 down;" in text
    assert "weight=1 backup;" in text
    parsed = parse_nginx_upstream(text)
    assert [(s["name"], s["state"], s["backup"]) for s in parsed] == [
        ("web1-blue", "ready", False),
        ("web1-green", "drain", False),
        ("web2-blue", "ready", False),
        ("spare", "ready", True),
    ]


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"name": "bad name", "address": "h:1"}, "has the name 'bad name'"),
        ({"name": "a", "address": "h:1", "state": "paused"}, "state 'paused'"),
        ({"name": "a", "address": "h:1", "weight": 300}, "weight 300"),
        ({"name": "a", "address": "no-port"}, "address 'no-port'"),
        ({"name": "a"}, "nginx needs host:port"),
    ],
)
def test_bad_servers_are_named(server: dict[str, object], message: str) -> None:
    with pytest.raises(RouterError, match=message):
        normalize_servers([server], "nginx")


def test_duplicate_server_names_are_refused() -> None:
    with pytest.raises(RouterError, match="listed twice"):
        normalize_servers([{"name": "a", "address": "h:1"}, {"name": "a", "address": "h:2"}], "nginx")


def test_haproxy_state_is_read_by_column_name_and_configured_bits_do_not_mean_maint() -> None:
    rows = parse_server_states(STATE_TEXT)
    assert [row["srv_name"] for row in rows] == ["web1-blue", "web1-green"]
    assert rows[0]["srv_port"] == "8001"
    assert [admin_state(int(row["srv_admin_state"])) for row in rows] == ["ready", "maint"]
    assert admin_state(0x08) == "drain" and admin_state(0x20) == "ready" and admin_state(0x09) == "maint"


def test_haproxy_plan_brings_servers_up_before_taking_others_down() -> None:
    current = [
        {"name": "web1-blue", "address": "10.0.0.11:8001", "weight": 1, "state": "ready"},
        {"name": "web1-green", "address": "10.0.0.11:8002", "weight": 1, "state": "maint"},
    ]
    wanted = normalize_servers(
        [{"name": "web1-blue", "state": "maint"}, {"name": "web1-green", "state": "ready", "weight": 5}], "haproxy"
    )
    assert haproxy_plan("app", current, wanted) == [
        "set weight app/web1-green 5",
        "set server app/web1-green state ready",
        "set server app/web1-blue state maint",
    ]
    assert haproxy_plan("app", current, normalize_servers(current, "haproxy")) == []
    moved = normalize_servers([{"name": "web1-blue", "address": "10.0.0.99:9000"}], "haproxy")
    assert haproxy_plan("app", current, moved) == ["set server app/web1-blue addr 10.0.0.99 port 9000"]
    with pytest.raises(RouterError, match="no server web9"):
        haproxy_plan("app", current, normalize_servers([{"name": "web9"}], "haproxy"))


def test_supervisor_program_escapes_percent_and_quotes() -> None:
    supervisor = Supervisor("/srv/app/supervisor")
    text = supervisor.program_config(
        "app-blue", ["/usr/bin/python3", "app.py", "100%"], "/srv/app/blue", {"GREETING": 'say "hi"'}, 1, 10, None
    )
    parser = configparser.ConfigParser()
    parser.read_string(text)
    section = parser["program:app-blue"]
    assert section["command"] == "/usr/bin/python3 app.py 100%"
    assert section["environment"] == 'GREETING="say \\"hi\\""'
    assert section["autostart"] == "false" and section["directory"] == "/srv/app/blue"


def test_systemd_unit_quotes_arguments() -> None:
    text = Systemd("/etc/systemd/system").program_config(
        "app-green", ["/usr/bin/python3", "my app.py", "$HOME"], "/srv/app/green", {"PORT": "8002"}, 1, 10, "app"
    )
    assert 'ExecStart="/usr/bin/python3" "my app.py" "$$HOME"' in text
    assert 'Environment="PORT=8002"' in text and "User=app" in text and "WorkingDirectory=/srv/app/green" in text


def test_process_names_are_checked() -> None:
    with pytest.raises(ProcessError, match="not valid"):
        check_name("../etc/passwd")


def test_app_process_arguments_are_checked() -> None:
    """app_process's own checks, through the function the module calls before acting; one of them is also run
    through ansible-playbook in tests/integration/test_traffic_router.py, which shows the module fails with it."""
    args = {"name": "warm", "state": "stopped", "stop_after": 120}
    check_params(args)
    with pytest.raises(ProcessError, match="stop_after -1 is negative"):
        check_params({**args, "stop_after": -1})
    with pytest.raises(ProcessError, match="stop_after only goes with state=stopped"):
        check_params({**args, "state": "started", "stop_after": 5})
    with pytest.raises(ProcessError, match="names the stop timers"):
        check_params({**args, "name": "warm-stop-timer"})


# No systemd runs here (PID 1 is not systemd), so the systemd timer path is checked against the command
# lines it sends to systemctl and systemd-run, answered by a recorder that keeps the timer's and its stop
# service's properties as systemd reports them (systemd-run's timers unload themselves once fired).
SYSTEMD_RECORDER = r"""
import json, os, sys
state_path = os.environ["RECORDER_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {"calls": [], "units": {}}
tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
state["calls"].append([tool] + args)
units = state["units"]
if tool == "systemd-run":
    unit = [a.split("=", 1)[1] for a in args if a.startswith("--unit=")][0]
    if unit + ".timer" in units or unit + ".service" in units:
        print("Failed to start transient timer unit: Unit %s.timer was already loaded" % unit)
        json.dump(state, open(state_path, "w"))
        sys.exit(1)
    description = [a.split("=", 1)[1] for a in args if a.startswith("--description=")][0]
    units[unit + ".timer"] = {"LoadState": "loaded", "ActiveState": "active", "SubState": "waiting",
                              "Description": description}
elif args[0] == "show":
    unit = units.get(args[-1], {"LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead"})
    print("\n".join("%s=%s" % item for item in unit.items()))
elif args[0] == "stop":
    if args[1] not in units:
        print("Failed to stop %s: Unit %s not loaded." % (args[1], args[1]))
        json.dump(state, open(state_path, "w"))
        sys.exit(5)
    del units[args[1]]
json.dump(state, open(state_path, "w"))
"""


@pytest.fixture
def systemd_recorder(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> "tuple[Systemd, str]":
    state = os.path.join(str(tmp_path), "state.json")
    for tool in ("systemctl", "systemd-run"):
        path = os.path.join(str(tmp_path), tool)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("#!%s\n%s" % (sys.executable, SYSTEMD_RECORDER))
        os.chmod(path, 0o755)
    monkeypatch.setenv("RECORDER_STATE", state)
    systemd = Systemd(
        str(tmp_path), os.path.join(str(tmp_path), "systemctl"), os.path.join(str(tmp_path), "systemd-run")
    )
    return systemd, state


def _recorded(state: str) -> "dict[str, Any]":
    if not os.path.exists(state):
        return {"calls": [], "units": {}}
    with open(state, encoding="utf-8") as handle:
        recorded: dict[str, Any] = json.load(handle)
    return recorded


def _set_units(state: str, units: "dict[str, dict[str, str]]") -> None:
    recorded = _recorded(state)
    recorded["units"] = units
    with open(state, "w", encoding="utf-8") as handle:
        json.dump(recorded, handle)


def test_systemd_schedules_cancels_and_reports_a_stop_timer(systemd_recorder: "tuple[Systemd, str]") -> None:
    systemd, state = systemd_recorder
    assert systemd.pending_stop("app-blue") is None
    deadline = systemd.schedule_stop("app-blue", 300)
    assert abs(deadline - (time.time() + 300)) < 5
    run = [call for call in _recorded(state)["calls"] if call[0] == "systemd-run"]
    assert run == [
        [
            "systemd-run",
            "--unit=app-blue-stop-timer",
            "--on-active=300s",
            "--timer-property=AccuracySec=1s",
            "--collect",
            "--description=relops.release: stops app-blue at %d" % deadline,
            os.path.join(os.path.dirname(state), "systemctl"),
            "stop",
            "app-blue.service",
        ]
    ]
    assert systemd.pending_stop("app-blue") == deadline
    assert systemd.cancel_stop("app-blue") is True
    assert ["systemctl", "stop", "app-blue-stop-timer.timer"] in _recorded(state)["calls"]
    assert systemd.pending_stop("app-blue") is None
    assert systemd.cancel_stop("app-blue") is False


def test_systemd_stop_under_way_or_failed_is_cleared_before_a_new_timer(
    systemd_recorder: "tuple[Systemd, str]",
) -> None:
    systemd, state = systemd_recorder
    # The timer fired and its service is still stopping the slot: not pending, but in the way of a new timer.
    _set_units(
        state,
        {
            "app-blue-stop-timer.timer": {"LoadState": "loaded", "ActiveState": "active", "SubState": "running"},
            "app-blue-stop-timer.service": {"LoadState": "loaded", "ActiveState": "active", "SubState": "running"},
        },
    )
    assert systemd.pending_stop("app-blue") is None
    assert systemd.cancel_stop("app-blue") is False
    assert _recorded(state)["units"] == {}
    # A failed stop service left behind (as without --collect) does not block the next schedule either.
    _set_units(state, {"app-blue-stop-timer.service": {"LoadState": "loaded", "ActiveState": "failed"}})
    deadline = systemd.schedule_stop("app-blue", 60)
    assert systemd.pending_stop("app-blue") == deadline


def test_supervisor_stop_timer_program_sleeps_then_stops() -> None:
    supervisor = Supervisor("/srv/app/supervisor", supervisorctl="/opt/venv/bin/supervisorctl")
    text = supervisor.timer_config("app-blue", 1795000000)
    assert read_deadline(text) == 1795000000
    parser = configparser.ConfigParser()
    parser.read_string(text)
    section = parser["program:app-blue-stop-timer"]
    assert section["autorestart"] == "false" and section["startsecs"] == "0"
    # It sleeps until the absolute deadline (not for a fixed time from whenever it started), then stops.
    assert section["command"] == (
        '/bin/sh -c \'now=$(date +%s); [ "$now" -lt 1795000000 ] && sleep $((1795000000 - now));'
        " exec /opt/venv/bin/supervisorctl -c /srv/app/supervisor/supervisord.conf stop app-blue'"
    )
