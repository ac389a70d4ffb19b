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
author:
  - relops.release maintainers (@relops)
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
"""

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
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
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
    "wait_port": {"type": "int"},
    "wait_host": {"type": "str", "default": "127.0.0.1"},
    "wait_timeout": {"type": "int", "default": 30},
}


def manager_for(params: Dict[str, Any]) -> Union[Supervisor, Systemd]:
    if params["manager"] == "systemd":
        return Systemd(params["systemd_unit_dir"])
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


def run_module(module: AnsibleModule) -> Dict[str, Any]:
    params = module.params
    name, state = params["name"], params["state"]
    check_name(name)
    manager = manager_for(params)
    before = manager.status(name)
    if state == "query":
        return {"changed": False, **before}
    path = manager.program_path(name)
    old_text = read_text(path)
    new_text = wanted_definition(manager, params)
    definition_changed = old_text != new_text
    running = bool(before["running"])
    wants_running = state in ("started", "restarted")
    changed = definition_changed or state == "restarted" or running != wants_running
    result: Dict[str, Any] = {"changed": changed}
    if module._diff:
        result["diff"] = {
            "before": (old_text or "") + "# running: %s\n" % running,
            "after": (new_text or "") + "# running: %s\n" % wants_running,
            "before_header": path,
            "after_header": path,
        }
    if module.check_mode:
        result.update(status="RUNNING" if wants_running else "STOPPED", running=wants_running, pid=before["pid"])
        return result
    if wants_running or definition_changed:
        result["changed"] = manager.ensure_daemon() or changed
    if definition_changed:
        if running and not wants_running:
            manager.stop(name)
        manager.apply_program(name, new_text)
    if wants_running:
        after = manager.status(name)
        if state == "restarted" or (definition_changed and after["running"]):
            manager.restart(name)
        elif not after["running"]:
            manager.start(name)
        if params["wait_port"] and not wait_for_port(params["wait_host"], params["wait_port"], params["wait_timeout"]):
            raise ProcessError(
                "%s runs but nothing accepts connections on %s:%d after %ds; check its log and its port setting"
                % (name, params["wait_host"], params["wait_port"], params["wait_timeout"])
            )
    elif running and not definition_changed:
        manager.stop(name)
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
