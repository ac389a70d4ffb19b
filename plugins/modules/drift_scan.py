#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: drift_scan
short_description: Compare a host with its configuration baseline and optionally restore it
version_added: 0.1.0
description:
  - Compares the host with the baseline M(relops.release.config_baseline) recorded (files, packages, services,
    kernel parameters) and reports each difference as an item of RV(drift) and as a diff in RV(drift_diff)
    (C(before) is the baseline, C(after) the host now).
  - With O(remediate=true) restores what it can. File content comes back from the stored copy (written to a
    temporary file and renamed over the path, so readers never see half a file), then owner, group and mode;
    kernel parameters are written back to C(/proc/sys). Package versions, service states and files added since
    the baseline are reported in RV(unremediated) and left to the package and service modules or to a person.
  - Scanning alone never changes the host and reports C(changed=false). Remediation reports C(changed=true) only
    when it restored something, so a second run finds nothing to do.
author:
  - relops.release maintainers (@relops)
requirements:
  - The standard library of the target's Python only
options:
  path:
    description: The baseline document written by M(relops.release.config_baseline).
    type: path
    required: true
  store:
    description: Folder of stored file copies. Defaults to O(path) with C(.d) appended.
    type: path
  remediate:
    description: Restore the baseline where possible.
    type: bool
    default: false
  fail_on_drift:
    description: Fail when drift remains after the scan (and the remediation, if any).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: With O(remediate=true), reports what would be restored without touching the host.
  diff_mode:
    support: full
    details: With O(remediate=true), shows the drifted entries before (host) and after (baseline) remediation.
  platform:
    platforms: posix
seealso:
  - module: relops.release.config_baseline
"""

EXAMPLES = r"""
- name: Report drift
  relops.release.drift_scan:
    path: /var/lib/relops/drift/app.json
  register: drift

- name: Put the baseline back, showing what changes
  relops.release.drift_scan:
    path: /var/lib/relops/drift/app.json
    remediate: true
  diff: true
"""

RETURN = r"""
drifted:
  description: Whether the host differed from the baseline when the scan started.
  returned: always
  type: bool
drift:
  description: Each difference found.
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: file, name: /etc/app/app.conf, field: mode, expected: "0644", actual: "0666", remediable: true}
    - {kind: package, name: nginx, field: version, expected: 1.22.1-9, actual: 1.22.1-9+deb12u1, remediable: false}
drift_diff:
  description: The drifted entries as text; C(before) is the baseline, C(after) the host now.
  returned: always
  type: dict
remediated:
  description: The differences restored (or that would be, in check mode).
  returned: always
  type: list
  elements: dict
unremediated:
  description: The differences left as they are after the task.
  returned: always
  type: list
  elements: dict
"""

from typing import Any, Dict

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.drift import (
    DriftError,
    load_baseline,
    remediate,
    render_lines,
    scan,
)


def run(module: AnsibleModule) -> Dict[str, Any]:
    params = module.params
    store = params["store"] or params["path"] + ".d"
    baseline = load_baseline(params["path"])
    if baseline is None:
        raise DriftError("no baseline at %s; record one first with relops.release.config_baseline" % params["path"])
    findings = scan(baseline)
    fixable = [item for item in findings if item["remediable"]]
    remediated, unremediated = [], list(findings)
    if params["remediate"]:
        unremediated = [item for item in findings if not item["remediable"]]
        remediated = fixable
        if fixable and not module.check_mode:
            remediated, unremediated = remediate(baseline, findings, store)
    result: Dict[str, Any] = {
        "changed": bool(params["remediate"] and remediated),
        "drifted": bool(findings),
        "drift": findings,
        "drift_diff": {
            "before": render_lines(findings, "expected"),
            "after": render_lines(findings, "actual"),
            "before_header": "baseline %s" % params["path"],
            "after_header": "host now",
        },
        "remediated": remediated,
        "unremediated": unremediated,
    }
    if module._diff and result["changed"]:
        result["diff"] = {
            "before": render_lines(remediated, "actual"),
            "after": render_lines(remediated, "expected"),
            "before_header": "host",
            "after_header": "baseline %s" % params["path"],
        }
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "store": {"type": "path"},
            "remediate": {"type": "bool", "default": False},
            "fail_on_drift": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except (DriftError, OSError) as error:
        module.fail_json(msg=str(error))
    if module.params["fail_on_drift"] and result["unremediated"]:
        module.fail_json(
            msg="%d configuration difference(s) from the baseline remain: %s"
            % (
                len(result["unremediated"]),
                "; ".join("%s %s %s" % (i["kind"], i["name"], i["field"]) for i in result["unremediated"][:10]),
            ),
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
