#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: app_process
short_description: Start, stop or restart a release slot's process under supervisord or systemd
version_added: 0.1.0
description:
  - Defines one long-running process (a program for supervisord, a unit for systemd) and brings it to
    O(state). The deploy roles run each release slot as its own process on its own port with it.
  - With O(manager=supervisord) (the default) the module keeps one supervisord per O(supervisor_dir)
    (its configuration, socket, logs and one program file per process), starting the daemon when it is
    not running. supervisord is a Python program, C(pip install supervisor); point O(supervisord_binary)
    and O(supervisorctl_binary) at it when it is not on PATH.
  - With O(manager=systemd) it writes C(<name>.service) into O(systemd_unit_dir) and drives it with systemctl.
  - A changed definition restarts a running process. With O(wait_port) the task waits until the process
    accepts connections there.
  - O(state=stopped) with O(stop_after) leaves the process running and schedules its stop on the host, so
    the stop happens with no Ansible run connected. The deploy roles keep the previous release slot warm
    for instant rollback this way. Starting the process again (V(started), V(restarted)) cancels a pending
    stop, so a rollback onto a warm slot keeps it running.
author:
  - relops.release maintainers (@relops)
requirements:
  - The standard library of the target's Python only
options:
  name:
    description: The process name (supervisord program or systemd unit, without C(.service)).
    type: str
    required: true
  state:
    description:
      - V(started) defines the process and makes sure it runs; V(restarted) always restarts it;
        V(stopped) stops it (keeping the definition); V(absent) stops it and removes the definition;
        V(query) only reports its status.
    type: str
    choices: [started, stopped, restarted, absent, query]
    default: started
  command:
    description: The program and its arguments, run without a shell. Required with V(started) and V(restarted).
    type: list
    elements: str
  directory:
    description: The working directory of the process.
    type: path
  environment:
    description: Environment variables for the process.
    type: dict
    default: {}
  user:
    description: Run the process as this user.
    type: str
  manager:
    description: The process manager.
    type: str
    choices: [supervisord, systemd]
    default: supervisord
  supervisor_dir:
    description: The directory of the supervisord instance. Required with O(manager=supervisord).
    type: path
  supervisord_binary:
    description: The supervisord program.
    type: str
    default: supervisord
  supervisorctl_binary:
    description: The supervisorctl program.
    type: str
    default: supervisorctl
  systemd_unit_dir:
    description: Where unit files are written with O(manager=systemd).
    type: path
    default: /etc/systemd/system
  start_seconds:
    description: Seconds the process must stay up for a start to count as successful.
    type: int
    default: 1
  stop_seconds:
    description: Seconds between the stop signal and a kill.
    type: int
    default: 10
  stop_after:
    description:
      - With O(state=stopped), do not stop now but this many seconds from now, by a timer on the host. The
        timer is a one-shot C(<name>-stop-timer) program under the same supervisord, or a transient
        C(<name>-stop-timer.timer) made with C(systemd-run --on-active) under systemd.
      - A stop already pending is kept (the task reports no change). V(started), V(restarted), V(absent) and
        V(stopped) without O(stop_after) cancel it; V(query) reports it in RV(stop_at).
      - The process keeps its current definition until the stop, so giving a O(command) (or O(directory),
        O(environment), O(user)) that differs from it is an error; leave them out.
      - V(0) stops now, like leaving the option out.
    type: int
    default: 0
    version_added: 0.1.0
  systemd_run_binary:
    description: The systemd-run program, used with O(manager=systemd) and O(stop_after).
    type: str
    default: systemd-run
    version_added: 0.1.0
  wait_port:
    description: After starting, wait until something accepts TCP connections on this port.
    type: int
  wait_host:
    description: The address O(wait_port) is checked on.
    type: str
    default: 127.0.0.1
  wait_timeout:
    description: Seconds to wait for O(wait_port).
    type: int
    default: 30
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - relops.release.permit
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the program definition (supervisord program file or systemd unit) before and after.
  platform:
    platforms: posix
seealso:
  - module: relops.release.traffic_router
  - module: relops.release.slot_install
"""

EXAMPLES = r"""
- name: Run the green slot on port 8002 under the embedded supervisord
  relops.release.app_process:
    name: demo-app-green
    command: [/usr/bin/python3, -m, demo_app.server, /srv/demo/green/config/app.json]
    directory: /srv/demo/green
    environment:
      PYTHONPATH: /srv/demo/green/src
    supervisor_dir: /srv/demo/supervisor
    wait_port: 8002

- name: Keep the blue slot warm for five minutes of instant rollback, then stop it on the host
  relops.release.app_process:
    name: demo-app-blue
    state: stopped
    stop_after: 300
    supervisor_dir: /srv/demo/supervisor

- name: Stop the blue slot (systemd host)
  relops.release.app_process:
    name: demo-app-blue
    manager: systemd
    state: stopped
"""

RETURN = r"""
status:
  description: The manager's status word after the task (RUNNING, STOPPED, ACTIVE, ABSENT...).
  returned: always
  type: str
running:
  description: Whether the process runs after the task (would run, in check mode).
  returned: always
  type: bool
pid:
  description: The process id, when it runs.
  returned: always
  type: int
stop_at:
  description:
    - When a scheduled stop (O(stop_after)) will stop the process, as RFC 3339 UTC; null when no stop is pending,
      and in check mode when the task would schedule one.
  returned: always
  type: str
  sample: "2026-11-26T19:40:00.000000Z"
"""

import datetime
from typing import Any, Dict, Optional, Union

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.procman import (
    ProcessError,
    Supervisor,
    Systemd,
    check_environment,
    check_name,
    read_text,
    wait_for_port,
    wait_settled,
)
from ansible_collections.relops.release.plugins.module_utils.timestamps import format_timestamp

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    # Read by the action plugin in front of this module (the permit guard); the module ignores it.
    "permit": {"type": "raw"},
    "name": {"type": "str", "required": True},
    "state": {
        "type": "str",
        "default": "started",
        "choices": ["started", "stopped", "restarted", "absent", "query"],
    },
    "command": {"type": "list", "elements": "str"},
    "directory": {"type": "path"},
    "environment": {"type": "dict", "default": {}},
    "user": {"type": "str"},
    "manager": {"type": "str", "default": "supervisord", "choices": ["supervisord", "systemd"]},
    "supervisor_dir": {"type": "path"},
    "supervisord_binary": {"type": "str", "default": "supervisord"},
    "supervisorctl_binary": {"type": "str", "default": "supervisorctl"},
    "systemd_unit_dir": {"type": "path", "default": "/etc/systemd/system"},
    "start_seconds": {"type": "int", "default": 1},
    "stop_seconds": {"type": "int", "default": 10},
    "stop_after": {"type": "int", "default": 0},
    "systemd_run_binary": {"type": "str", "default": "systemd-run"},
    "wait_port": {"type": "int"},
    "wait_host": {"type": "str", "default": "127.0.0.1"},
    "wait_timeout": {"type": "int", "default": 30},
}


def manager_for(params: Dict[str, Any]) -> Union[Supervisor, Systemd]:
    if params["manager"] == "systemd":
        return Systemd(params["systemd_unit_dir"], systemd_run=params["systemd_run_binary"])
    if not params["supervisor_dir"]:
        raise ProcessError("manager=supervisord needs supervisor_dir, the directory of the supervisord instance")
    return Supervisor(params["supervisor_dir"], params["supervisord_binary"], params["supervisorctl_binary"])


def wanted_definition(manager: Union[Supervisor, Systemd], params: Dict[str, Any]) -> Optional[str]:
    if params["state"] == "absent":
        return None
    if not params["command"]:
        if params["state"] in ("started", "restarted"):
            raise ProcessError("state=%s needs command, the program and its arguments" % params["state"])
        # stopped without a command keeps whatever definition exists.
        return read_text(manager.program_path(params["name"]))
    check_environment(params["environment"])
    return manager.program_config(
        params["name"],
        params["command"],
        params["directory"],
        {key: str(value) for key, value in params["environment"].items()},
        params["start_seconds"],
        params["stop_seconds"],
        params["user"],
    )


def stop_time(deadline: Optional[int]) -> Optional[str]:
    if deadline is None:
        return None
    return format_timestamp(datetime.datetime.fromtimestamp(deadline, datetime.timezone.utc))


def schedule_stop(module: AnsibleModule, manager: Union[Supervisor, Systemd], before: Dict[str, Any]) -> Dict[str, Any]:
    """state=stopped with stop_after: keep the process running and let the host stop it later."""
    name, seconds = module.params["name"], module.params["stop_after"]
    pending = manager.pending_stop(name)
    result: Dict[str, Any] = {"changed": pending is None, **before, "stop_at": stop_time(pending)}
    if pending is None and module._diff:
        result["diff"] = {"before": "# stop scheduled: no\n", "after": "# stop scheduled: in %ds\n" % seconds}
    if pending is None and not module.check_mode:
        result["stop_at"] = stop_time(manager.schedule_stop(name, seconds))
    return result


def check_params(params: Dict[str, Any]) -> None:
    check_name(params["name"])
    if params["stop_after"] < 0:
        raise ProcessError(
            "stop_after %d is negative; give the seconds until the stop, or 0 to stop now" % params["stop_after"]
        )
    if params["stop_after"] and params["state"] != "stopped":
        raise ProcessError(
            "stop_after only goes with state=stopped (state is %s); drop it or use state=stopped" % params["state"]
        )


def apply_state(
    manager: Union[Supervisor, Systemd], params: Dict[str, Any], running: bool, new_text: Optional[str]
) -> bool:
    """Bring the definition and the process to the wanted state (not in check mode); return whether it acted."""
    name, state = params["name"], params["state"]
    definition_changed = read_text(manager.program_path(name)) != new_text
    wants_running = state in ("started", "restarted")
    if definition_changed:
        if running and not wants_running:
            manager.stop(name)
        manager.apply_program(name, new_text)
    if not wants_running:
        if running and not definition_changed:
            manager.stop(name)
        return definition_changed or running
    after = manager.status(name)
    acted = definition_changed
    if state == "restarted" or (definition_changed and after["running"]):
        manager.restart(name)
        acted = True
    elif not after["running"]:
        manager.start(name)
        acted = True
    if params["wait_port"] and not wait_for_port(params["wait_host"], params["wait_port"], params["wait_timeout"]):
        raise ProcessError(
            "%s runs but nothing accepts connections on %s:%d after %ds; check its log and its port setting"
            % (name, params["wait_host"], params["wait_port"], params["wait_timeout"])
        )
    return acted


def run_module(module: AnsibleModule) -> Dict[str, Any]:
    params = module.params
    check_params(params)
    name, state = params["name"], params["state"]
    manager = manager_for(params)
    before = manager.status(name)
    if state == "query":
        return {"changed": False, **before, "stop_at": stop_time(manager.pending_stop(name))}
    path = manager.program_path(name)
    old_text = read_text(path)
    new_text = wanted_definition(manager, params)
    running = bool(before["running"])
    if params["stop_after"] and running:
        if old_text != new_text:
            raise ProcessError(
                "stop_after keeps %s running as it is defined, but the given command, directory, environment or "
                "user differ from its definition; leave those out to schedule the stop, or drop stop_after" % name
            )
        return schedule_stop(module, manager, before)
    pending = manager.pending_stop(name) is not None
    wants_running = state in ("started", "restarted")
    changed = old_text != new_text or state == "restarted" or running != wants_running or pending
    result: Dict[str, Any] = {"changed": changed, "stop_at": None}
    if module._diff:
        result["diff"] = {
            "before": (old_text or "") + "# running: %s\n" % running + ("# stop scheduled: yes\n" if pending else ""),
            "after": (new_text or "") + "# running: %s\n" % wants_running,
            "before_header": path,
            "after_header": path,
        }
    if module.check_mode:
        result.update(status="RUNNING" if wants_running else "STOPPED", running=wants_running, pid=before["pid"])
        return result
    # Any state but a scheduled stop cancels a pending one (a process started again must stay up) and
    # clears a fired timer's leftovers. A timer that fired just now may still be stopping the process:
    # wait for that to finish and act on the state it leaves.
    manager.cancel_stop(name)
    if pending:
        running = bool(wait_settled(manager, name, params["stop_seconds"] + 10)["running"])
    if wants_running or old_text != new_text:
        changed = manager.ensure_daemon() or changed
    result["changed"] = apply_state(manager, params, running, new_text) or changed
    result.update(manager.status(name) if state != "absent" else {"status": "ABSENT", "running": False, "pid": None})
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run_module(module)
    except ProcessError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
