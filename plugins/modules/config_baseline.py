#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: config_baseline
short_description: Record the configuration a host must keep, for relops.release.drift_scan
version_added: 0.1.0
description:
  - Records, in one JSON document on the target, the state of the files (sha256 checksum, owner, group, mode),
    package versions (C(dpkg-query) or C(rpm)), service states (C(systemctl is-active) and C(is-enabled)) and
    kernel parameters (read from C(/proc/sys)) that M(relops.release.drift_scan) later compares the host with.
  - A directory in O(files) is walked recursively; every file below it is recorded, and files added below it
    later are reported as drift.
  - With O(store_content), a copy of each file is kept in O(store) under its sha256, so a scan with
    C(remediate=true) can restore changed or deleted files byte for byte.
  - Without a running systemd (no C(/run/systemd/system), as in most containers) services are recorded as
    C(unknown) and scans do not compare them; the result's RV(systemd) says which case applied.
  - Running it again on an unchanged host changes nothing.
author:
  - relops.release maintainers (@relops)
requirements:
  - The standard library of the target's Python only
options:
  path:
    description: Where the baseline document is written on the target.
    type: path
    required: true
  store:
    description: Folder of stored file copies. Defaults to O(path) with C(.d) appended.
    type: path
  store_content:
    description: Keep a copy of each file's content so that remediation can restore it.
    type: bool
    default: true
  files:
    description: Absolute paths of files or directories to watch.
    type: list
    elements: path
    default: []
  packages:
    description: Package names whose installed version is recorded (absent packages are recorded as absent).
    type: list
    elements: str
    default: []
  services:
    description: systemd unit names whose active and enabled states are recorded.
    type: list
    elements: str
    default: []
  sysctls:
    description: Kernel parameters in dotted form, for example C(net.ipv4.ip_forward).
    type: list
    elements: str
    default: []
  sysctl_root:
    description: Where kernel parameters are read; change it only for a chroot or a test tree.
    type: path
    default: /proc/sys
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Computes the baseline and reports whether it would change, writing nothing.
  diff_mode:
    support: full
    details: Shows the baseline entries that would be added, changed or removed.
  platform:
    platforms: posix
seealso:
  - module: relops.release.drift_scan
"""

EXAMPLES = r"""
- name: Record the configuration of the app hosts
  relops.release.config_baseline:
    path: /var/lib/relops/drift/app.json
    files:
      - /etc/app
      - /etc/nginx/nginx.conf
    packages: [nginx, openssl]
    services: [nginx.service]
    sysctls: [net.ipv4.ip_forward, vm.swappiness]
"""

RETURN = r"""
path:
  description: The baseline document.
  returned: always
  type: str
counts:
  description: How many entries of each kind the baseline holds.
  returned: always
  type: dict
  sample: {files: 12, packages: 2, services: 1, sysctls: 2}
stored:
  description: How many file copies were added to the store (or would be, in check mode).
  returned: always
  type: int
systemd:
  description: Whether a running systemd was found; without it service states are recorded as unknown.
  returned: always
  type: bool
"""

from typing import Any, Dict, List

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.drift import (
    DriftError,
    load_baseline,
    missing_copies,
    store_copy,
    systemd_running,
    take_baseline,
    write_json_atomically,
)


def entry_lines(document: Dict[str, Any]) -> Dict[str, str]:
    """One comparable text line per baseline entry, keyed by the entry."""
    lines: Dict[str, str] = {}
    for kind in ("files", "packages", "services", "sysctls"):
        for name, value in (document or {}).get(kind, {}).items():
            key = "%s %s" % (kind[:-1], name)
            if isinstance(value, dict):
                text = " ".join("%s=%s" % (field, value[field]) for field in sorted(value) if field != "size")
            else:
                text = "(absent)" if value is None else str(value)
            lines[key] = "%s: %s" % (key, text)
    return lines


def changed_lines(before: Dict[str, Any], after: Dict[str, Any]) -> Dict[str, str]:
    old, new = entry_lines(before), entry_lines(after)
    keys = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
    return {
        "before": "".join(old[key] + "\n" for key in keys if key in old),
        "after": "".join(new[key] + "\n" for key in keys if key in new),
    }


def run(module: AnsibleModule) -> Dict[str, Any]:
    params = module.params
    store = params["store"] or params["path"] + ".d"
    existing = load_baseline(params["path"])
    document = take_baseline(
        params["files"], params["packages"], params["services"], params["sysctls"], params["sysctl_root"]
    )
    pending: List[str] = missing_copies(document, store) if params["store_content"] else []
    changed = existing != document or bool(pending)
    if changed and not module.check_mode:
        for path in pending:
            store_copy(store, path, document["files"][path]["sha256"])
        if existing != document:
            write_json_atomically(params["path"], document)
    result: Dict[str, Any] = {
        "changed": changed,
        "path": params["path"],
        "counts": {kind: len(document[kind]) for kind in ("files", "packages", "services", "sysctls")},
        "stored": len(pending),
        "systemd": systemd_running(),
    }
    if module._diff:
        result["diff"] = changed_lines(existing or {}, document)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "store": {"type": "path"},
            "store_content": {"type": "bool", "default": True},
            "files": {"type": "list", "elements": "path", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "services": {"type": "list", "elements": "str", "default": []},
            "sysctls": {"type": "list", "elements": "str", "default": []},
            "sysctl_root": {"type": "path", "default": "/proc/sys"},
        },
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except (DriftError, OSError) as error:
        module.fail_json(msg=str(error))
    if module.params["services"] and not result["systemd"]:
        module.warn("no running systemd on this host: services are recorded as unknown and scans skip them")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
