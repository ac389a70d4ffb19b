#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_router
short_description: Set the servers, weights and states behind an nginx upstream or an HAProxy backend
version_added: 0.1.0
description:
  - Runs on the router host and brings one upstream (nginx) or backend (HAProxy) to the listed servers,
    weights and states. The deploy roles M(relops.release.blue_green) and C(relops.release.canary) switch
    traffic with it.
  - With O(router=nginx) it renders the upstream block into O(nginx_upstream_file) (the list is the whole
    upstream), runs C(nginx -t), and reloads nginx gracefully. When the test fails the previous file is put
    back and the task fails. nginx has no drain, so V(drain) and V(maint) both render C(down).
  - A marker file, O(nginx_upstream_file) plus C(.relops-pending), exists from just before the upstream file is
    written until nginx has reloaded it. A run killed in between (C(kill -9) mid-switch) leaves it, and the next
    task on that upstream, V(query) included, first finishes that change (C(nginx -t), reload) so the file
    and what nginx serves agree again; it then reports RV(interrupted_change).
  - With O(router=haproxy) it talks to HAProxy's admin socket (C(set server <backend>/<server> state),
    C(set weight), C(set server ... addr)); servers becoming V(ready) change first, so the backend never has
    fewer ready servers in between. Servers not listed are left as they are. With O(haproxy_state_file) the
    state of every backend is written where C(server-state-file) points, so a reload with
    C(load-server-state-from-file global) keeps it.
  - Compares the current servers with the wanted ones first; nothing changes when they are equal.
author:
  - relops.release maintainers (@relops)
requirements:
  - The standard library of the target's Python only; the router (nginx or HAProxy) on the target
options:
  router:
    description: Which router to drive.
    type: str
    choices: [nginx, haproxy]
    required: true
  name:
    description: The nginx upstream name or the HAProxy backend name.
    type: str
    required: true
  state:
    description:
      - V(present) brings the router to O(servers); V(query) only returns the current servers.
    type: str
    choices: [present, query]
    default: present
  servers:
    description:
      - The servers. Required with O(state=present).
    type: list
    elements: dict
    suboptions:
      name:
        description: The server's name (HAProxy server name; kept in a comment in the nginx file).
        type: str
        required: true
      address:
        description: C(host:port). Required for nginx; for HAProxy it changes the server's address when given.
        type: str
      weight:
        description: Relative weight, 0 to 256. nginx renders weight 0 as C(down).
        type: int
        default: 1
      state:
        description: V(ready) takes traffic, V(drain) finishes current sessions only, V(maint) takes none.
        type: str
        choices: [ready, drain, maint]
        default: ready
      backup:
        description: nginx only, the C(backup) flag.
        type: bool
        default: false
  nginx_upstream_file:
    description: The file holding the upstream block, included from the nginx configuration. Required for nginx.
    type: path
  nginx_conf:
    description: The main nginx configuration passed with C(-c) to C(nginx -t) and C(nginx -s reload).
    type: path
  nginx_binary:
    description: The nginx program.
    type: str
    default: nginx
  nginx_directives:
    description: Extra directives inside the upstream block, e.g. C(keepalive 16).
    type: list
    elements: str
    default: []
  reload:
    description: Reload nginx after writing the upstream file.
    type: bool
    default: true
  haproxy_socket:
    description: HAProxy's admin socket (C(stats socket <path> level admin)). Required for haproxy.
    type: path
  haproxy_state_file:
    description: Where HAProxy's C(server-state-file) points; written after every change so reloads keep it.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - relops.release.permit
attributes:
  check_mode:
    support: full
    details: Reports the change and the diff without writing the file or talking to the admin socket's set commands.
  diff_mode:
    support: full
  platform:
    platforms: posix
seealso:
  - module: relops.release.app_process
"""

EXAMPLES = r"""
- name: Send all traffic to the green slots
  relops.release.traffic_router:
    router: nginx
    name: demo_app
    nginx_upstream_file: /etc/nginx/conf.d/demo_app_upstream.conf
    servers:
      - {name: web1-blue, address: "10.0.0.11:8001", state: maint}
      - {name: web1-green, address: "10.0.0.11:8002", state: ready}

- name: Drain the blue slot on HAProxy, keeping the change across reloads
  relops.release.traffic_router:
    router: haproxy
    name: demo_app
    haproxy_socket: /run/haproxy/admin.sock
    haproxy_state_file: /var/lib/haproxy/server-state
    servers:
      - {name: web1-blue, state: drain}
      - {name: web1-green, state: ready, weight: 10}

- name: Read the current servers
  relops.release.traffic_router:
    router: haproxy
    name: demo_app
    haproxy_socket: /run/haproxy/admin.sock
    state: query
  register: router
"""

RETURN = r"""
servers:
  description: The servers after the task (what they would be, in check mode).
  returned: always
  type: list
  elements: dict
before:
  description: The servers before the task.
  returned: always
  type: list
  elements: dict
interrupted_change:
  description: Whether an earlier run had written the nginx upstream file without reloading nginx; this task finished that change.
  returned: router is nginx
  type: bool
commands:
  description: HAProxy runtime API commands sent (or that would be sent in check mode).
  returned: router is haproxy
  type: list
  elements: str
"""

import os
from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.routers import (
    RouterError,
    apply_haproxy,
    apply_nginx,
    describe,
    finish_nginx_change,
    haproxy_plan,
    haproxy_servers,
    nginx_pending_marker,
    normalize_servers,
    parse_nginx_upstream,
    read_text,
    render_nginx_upstream,
)

SERVER_SPEC: Dict[str, Dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "address": {"type": "str"},
    "weight": {"type": "int", "default": 1},
    "state": {"type": "str", "default": "ready", "choices": ["ready", "drain", "maint"]},
    "backup": {"type": "bool", "default": False},
}

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    # Read by the action plugin in front of this module (the permit guard); the module ignores it.
    "permit": {"type": "raw"},
    "router": {"type": "str", "required": True, "choices": ["nginx", "haproxy"]},
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "query"]},
    "servers": {"type": "list", "elements": "dict", "options": SERVER_SPEC},
    "nginx_upstream_file": {"type": "path"},
    "nginx_conf": {"type": "path"},
    "nginx_binary": {"type": "str", "default": "nginx"},
    "nginx_directives": {"type": "list", "elements": "str", "default": []},
    "reload": {"type": "bool", "default": True},
    "haproxy_socket": {"type": "path"},
    "haproxy_state_file": {"type": "path"},
}


def run_nginx(module: AnsibleModule) -> Dict[str, Any]:
    params = module.params
    path = params["nginx_upstream_file"]
    if not path:
        raise RouterError("router=nginx needs nginx_upstream_file, the file nginx includes the upstream from")
    before_text = read_text(path)
    before = parse_nginx_upstream(before_text)
    # A run killed between writing the file and reloading nginx left the marker: nginx may still
    # serve what the file said before, so the change is finished (tested and reloaded) first.
    interrupted = os.path.exists(nginx_pending_marker(path))
    finish = (path, params["nginx_binary"], params["nginx_conf"], params["reload"])
    if params["state"] == "query":
        if interrupted and not module.check_mode:
            finish_nginx_change(*finish)
        return {"changed": interrupted, "servers": before, "before": before, "interrupted_change": interrupted}
    wanted = normalize_servers(params["servers"] or [], "nginx")
    text = render_nginx_upstream(params["name"], wanted, params["nginx_directives"])
    changed = text != before_text or interrupted
    if changed and not module.check_mode:
        if text == before_text:
            finish_nginx_change(*finish)
        else:
            apply_nginx(path, text, params["nginx_binary"], params["nginx_conf"], params["reload"])
    result: Dict[str, Any] = {
        "changed": changed,
        "servers": wanted,
        "before": before,
        "interrupted_change": interrupted,
    }
    if module._diff:
        result["diff"] = {"before": before_text or "", "after": text, "before_header": path, "after_header": path}
    return result


def run_haproxy(module: AnsibleModule) -> Dict[str, Any]:
    params = module.params
    socket_path = params["haproxy_socket"]
    if not socket_path:
        raise RouterError("router=haproxy needs haproxy_socket, the admin socket from `stats socket ... level admin`")
    before = haproxy_servers(socket_path, params["name"])
    if params["state"] == "query":
        return {"changed": False, "servers": before, "before": before, "commands": []}
    wanted = normalize_servers(params["servers"] or [], "haproxy")
    commands = haproxy_plan(params["name"], before, wanted)
    if commands and not module.check_mode:
        apply_haproxy(socket_path, commands, params["haproxy_state_file"])
    after = _merged(before, wanted)
    result: Dict[str, Any] = {"changed": bool(commands), "servers": after, "before": before, "commands": commands}
    if module._diff:
        header = "haproxy backend %s" % params["name"]
        result["diff"] = {
            "before": describe(before),
            "after": describe(after),
            "before_header": header,
            "after_header": header,
        }
    return result


def _merged(before: List[Dict[str, Any]], wanted: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    wanted_by_name = {server["name"]: server for server in wanted}
    merged = []
    for server in before:
        update = wanted_by_name.get(server["name"])
        if update is None:
            merged.append(server)
            continue
        merged.append(dict(update, address=update["address"] or server["address"], backup=False))
    return merged


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["servers"])],
        supports_check_mode=True,
    )
    try:
        result = run_nginx(module) if module.params["router"] == "nginx" else run_haproxy(module)
    except RouterError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
