"""Router and process-manager helpers of the deploy roles: rendering, parsing and planning."""

from __future__ import annotations

import configparser

import pytest

from ansible_collections.relops.release.plugins.module_utils.procman import (
    ProcessError,
    Supervisor,
    Systemd,
    check_name,
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
