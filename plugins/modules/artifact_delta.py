#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: artifact_delta
short_description: Ship a release package to a host as a zstd delta from the release it already has
version_added: 0.1.0
description:
  - On the controller, makes a delta from the previous package (O(base)) to the new one (O(src)) by compressing
    the new package's tar stream with C(zstd --patch-from --long), the previous package's tar stream as the
    reference. Without a zstd command line on the controller, the zstandard library does it with the base as a
    raw-content dictionary (see RV(delta_method)).
  - On the managed host, checks that the previous package there (O(remote_base)) is the exact base (sha256),
    rebuilds the new package from it and the delta, recompresses it with the package settings, and moves it to
    O(dest) only when its sha256 equals the signed digest. Nothing is written at O(dest) otherwise.
  - Falls back to copying the full package, and says so in C(fallback_reason) and a warning, when the host's
    Python lacks the C(zstandard) package, when the base is not on the host, or when the host's compression
    library rebuilds other bytes. A base that is present but has another digest fails the task, naming both
    digests, because the host does not run the release the play believes it does.
  - A host that already has the new package at O(dest) (same sha256) is left alone.
author:
  - relops.release maintainers (@relops)
options:
  src:
    description: The new package on the controller (verify it first with M(relops.release.artifact_verify)).
    type: path
    required: true
  base:
    description: The previous package on the controller; the delta is made against it.
    type: path
    required: true
  dest:
    description: Where the new package goes on the managed host.
    type: path
    required: true
  remote_base:
    description: Where the previous package is on the managed host. Defaults to O(base)'s file name in O(dest)'s directory.
    type: path
  sha256:
    description:
      - The signed digest of O(src) (C(<hex>) or C(sha256:<hex>)). When given, O(src) must have it; the rebuilt
        package must always match O(src)'s digest.
    type: str
  level:
    description: zstd compression level of the delta (1 to 22).
    type: int
    default: 19
  mode:
    description: File mode of O(dest).
    type: raw
    default: "0644"
  step:
    description:
      - Internal, set by the action plugin for each call to the host. V(probe) reports what the host has,
        V(apply) rebuilds from a delta, V(full) installs a copied package. Do not set it in a play.
    type: str
    choices: [probe, apply, full]
    default: probe
  base_sha256:
    description: Internal, set by the action plugin. The sha256 of O(base).
    type: str
  delta_file:
    description: Internal, set by the action plugin. The delta's path on the host.
    type: path
  full_file:
    description: Internal, set by the action plugin. The copied package's path on the host.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Probes the host and reports whether a delta or the full package would be shipped, and the delta's size.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - zstandard (Python package) on the controller, and on the host to receive deltas
  - zstd command line 1.4.7 or newer on the controller for small deltas of large packages (optional)
seealso:
  - module: relops.release.artifact_verify
"""

EXAMPLES = r"""
- name: Ship 1.5.0 as a delta from 1.4.0
  relops.release.artifact_delta:
    src: build/artifacts/demo-app-1.5.0.tar.zst
    base: build/artifacts/demo-app-1.4.0.tar.zst
    dest: /opt/releases/demo-app-1.5.0.tar.zst
    sha256: "{{ verified.sha256 }}"
  register: shipped

- name: Say how it travelled
  ansible.builtin.debug:
    msg: "{{ shipped.method }} ({{ shipped.delta_size | default(shipped.full_size) }} bytes)"
"""

RETURN = r"""
method:
  description: V(delta), V(full) (fallback) or V(none) (the host already had it).
  returned: success
  type: str
  sample: delta
fallback_reason:
  description: Why the full package was shipped instead of a delta.
  returned: when method is full
  type: str
  sample: the base /opt/releases/demo-app-1.4.0.tar.zst is not on the target
sha256:
  description: The digest of the package now at O(dest).
  returned: success
  type: str
base_sha256:
  description: The digest of O(base).
  returned: success
  type: str
delta_size:
  description: Size of the delta in bytes.
  returned: when a delta was made
  type: int
full_size:
  description: Size of the full package in bytes.
  returned: success
  type: int
ratio:
  description: delta_size divided by full_size.
  returned: when a delta was made
  type: float
delta_method:
  description:
    - How the controller made the delta. V(patch-from) is the zstd command line with C(--patch-from) and C(--long)
      (small deltas for any package size). V(dictionary) is the zstandard library with the base as a raw-content
      dictionary, used when the controller has no zstd 1.4.7 or newer; its deltas of large packages are much bigger.
      The host applies both the same way.
  returned: when a delta was made
  type: str
  sample: patch-from
dest:
  description: The package's path on the host.
  returned: success
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.artifact_specs import ARTIFACT_DELTA_SPEC
from ansible_collections.relops.release.plugins.module_utils.delta import DeltaError, apply_delta
from ansible_collections.relops.release.plugins.module_utils.digests import digests_equal, file_digest
from ansible_collections.relops.release.plugins.module_utils.packformat import HAS_ZSTANDARD, FormatError


def probe(module: AnsibleModule) -> None:
    dest, base = module.params["dest"], module.params["remote_base"]
    module.exit_json(
        changed=False,
        has_zstandard=HAS_ZSTANDARD,
        dest_sha256=file_digest(dest)[0] if os.path.isfile(dest) else None,
        base_present=os.path.isfile(base),
        base_sha256=file_digest(base)[0] if os.path.isfile(base) else None,
    )


def apply(module: AnsibleModule) -> None:
    params = module.params
    try:
        apply_delta(
            params["remote_base"],
            params["base_sha256"],
            params["delta_file"],
            params["dest"],
            params["sha256"],
            _mode(module),
        )
    except FormatError as exc:
        module.fail_json(msg=str(exc), fallback=True)
    except DeltaError as exc:
        # Other rebuilt bytes mean another compression library: the full package still works.
        module.fail_json(msg=str(exc), fallback="rebuilt from the delta has" in str(exc))
    module.exit_json(changed=True, sha256=params["sha256"], dest=params["dest"])


def install_full(module: AnsibleModule) -> None:
    params = module.params
    actual = file_digest(params["full_file"])[0]
    if not digests_equal(params["sha256"], actual):
        module.fail_json(
            msg="the copied package has sha256:%s, not sha256:%s; the transfer damaged it, run the task again"
            % (actual, params["sha256"])
        )
    module.atomic_move(params["full_file"], params["dest"])
    os.chmod(params["dest"], _mode(module))
    module.exit_json(changed=True, sha256=actual, dest=params["dest"])


def _mode(module: AnsibleModule) -> int:
    mode = module.params["mode"]
    try:
        return int(str(mode), 8) if isinstance(mode, str) else int(mode)
    except ValueError:
        module.fail_json(msg="mode %r is not an octal file mode; write it quoted, e.g. '0644'" % (mode,))
        raise


def run_module(module: AnsibleModule) -> None:
    step = module.params["step"]
    if step != "probe":
        missing = [name for name in ("sha256", "base_sha256") if not module.params[name]]
        missing += ["delta_file"] if step == "apply" and not module.params["delta_file"] else []
        missing += ["full_file"] if step == "full" and not module.params["full_file"] else []
        if missing:
            module.fail_json(msg="step %s needs %s; this step is run by the action plugin" % (step, ", ".join(missing)))
    if not module.params["remote_base"]:
        module.params["remote_base"] = os.path.join(
            os.path.dirname(module.params["dest"]), os.path.basename(module.params["base"])
        )
    {"probe": probe, "apply": apply, "full": install_full}[step](module)


def main() -> None:
    module = AnsibleModule(argument_spec=ARTIFACT_DELTA_SPEC, supports_check_mode=True)
    run_module(module)


if __name__ == "__main__":
    main()
