#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: slot_install
short_description: Check a release package's digest on the host and unpack it safely into a release slot
version_added: 0.1.0
description:
  - Measures the digest of the package file on the host (streaming, standard library only) and refuses it
    unless it equals O(checksum).
  - Unpacks it with the safe unpacking helper (C(module_utils/unpack.py), the one M(relops.release.artifact_verify)
    documents) into a staging directory next to O(dest), then swaps it into place, so a failure never leaves
    a half-written slot. Absolute paths, C(..), links leaving the slot (also through other links), devices,
    setuid/setgid bits, a payload over O(max_bytes) and more entries than O(max_entries) are refused, and so
    is a damaged, truncated or non-tar package; every refusal names the package and the slot.
  - Where the host's Python lacks C(tarfile.data_filter) (before 3.8.17, 3.9.17, 3.10.12 or 3.11.4, e.g.
    Debian 12's 3.11.2), the helper makes the same checks itself, with the same refusals.
  - Writes C(.relops-slot.json) into the slot (digest, artifact, name, version). When the slot already holds
    the package with this digest nothing changes, which makes the task idempotent.
  - O(state=query) reports what a slot holds without changing it.
author:
  - relops.release maintainers (@relops)
requirements:
  - The standard library of the target's Python; C(zstandard) on the target only for C(.tar.zst) packages
options:
  dest:
    description: The slot directory (replaced as a whole when a different package is installed).
    type: path
    required: true
  src:
    description: The package file on the host. Required with O(state=present).
    type: path
  checksum:
    description: The package's expected digest, C(sha256:<hex>) or C(sha512:<hex>). Required with O(state=present).
    type: str
  state:
    description: V(present) installs the package; V(query) only reports the slot's content.
    type: str
    choices: [present, query]
    default: present
  max_bytes:
    description: The most bytes the package may unpack to.
    type: int
    default: 1073741824
  max_entries:
    description:
      - The most entries (files, directories, links) the package may hold. Guards the host's inodes and time
        against an archive of, say, 200,000 empty directories, which the byte limit does not see.
    type: int
    default: 100000
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - relops.release.permit
attributes:
  check_mode:
    support: full
    details: Checks the digest and the archive's entries, and reports whether the slot would change.
  diff_mode:
    support: full
    details: Shows the slot's release (name, version, digest) before and after.
  platform:
    platforms: posix
seealso:
  - module: relops.release.artifact_verify
  - module: relops.release.app_process
"""

EXAMPLES = r"""
- name: Install the verified package into the idle slot
  relops.release.slot_install:
    src: /srv/demo/artifacts/demo-app-1.4.0.tar.gz
    checksum: "sha256:{{ package.sha256 }}"
    dest: /srv/demo/slots/green

- name: What does the blue slot hold?
  relops.release.slot_install:
    dest: /srv/demo/slots/blue
    state: query
  register: blue
"""

RETURN = r"""
slot:
  description: The slot's release after the task (in check mode, what it would be), or null for an empty slot.
  returned: always
  type: dict
  contains:
    digest:
      description: "The package digest, as C(sha256:<hex>)."
      type: str
      returned: success
    artifact:
      description: The package file name.
      type: str
      returned: success
    name:
      description: The manifest's name.
      type: str
      returned: success
    version:
      description: The manifest's version.
      type: str
      returned: success
manifest:
  description: The package's manifest.json, when the slot holds a package.
  returned: always
  type: dict
members:
  description: How many archive entries were unpacked.
  returned: when installed
  type: int
"""

import json
import os
import shutil
import time
from typing import Any, Dict, Optional

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.digests import (
    ChecksumError,
    digests_equal,
    file_digest,
    parse_prefixed,
)
from ansible_collections.relops.release.plugins.module_utils.unpack import (
    DEFAULT_MAX_ENTRIES,
    UnsafeArchiveError,
    read_member,
    safe_extract,
    scan_archive,
)

MARKER = ".relops-slot.json"

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    # Read by the action plugin in front of this module (the permit guard); the module ignores it.
    "permit": {"type": "raw"},
    "dest": {"type": "path", "required": True},
    "src": {"type": "path"},
    "checksum": {"type": "str"},
    "state": {"type": "str", "default": "present", "choices": ["present", "query"]},
    "max_bytes": {"type": "int", "default": 1024 * 1024 * 1024},
    "max_entries": {"type": "int", "default": DEFAULT_MAX_ENTRIES},
}


class SlotError(RuntimeError):
    """The package cannot go into the slot; the message says why and what to do."""


def read_slot(dest: str) -> Optional[Dict[str, Any]]:
    try:
        with open(os.path.join(dest, MARKER), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_manifest(dest: str) -> Dict[str, Any]:
    try:
        with open(os.path.join(dest, "manifest.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def verify_digest(src: str, checksum: str) -> str:
    try:
        algorithm, expected = parse_prefixed(checksum)
    except ChecksumError as exc:
        raise SlotError(str(exc)) from None
    if not os.path.isfile(src):
        raise SlotError("package %s is not on the host; copy it there before installing" % src)
    actual = file_digest(src, algorithm)[0]
    if not digests_equal(expected, actual):
        raise SlotError(
            "package %s has %s:%s, not the expected %s; it was damaged or replaced, copy the verified package again"
            % (src, algorithm, actual, checksum)
        )
    return "%s:%s" % (algorithm, actual)


def install(src: str, dest: str, digest: str, limits: Dict[str, int], manifest: Dict[str, Any]) -> int:
    """Unpack into a staging directory, add the marker, then swap it into place."""
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    staging = "%s.relops-new-%d" % (dest, os.getpid())
    shutil.rmtree(staging, ignore_errors=True)
    counts = safe_extract(src, staging, limits["max_bytes"], limits["max_entries"])
    marker = {
        "digest": digest,
        "artifact": os.path.basename(src),
        "name": manifest.get("name"),
        "version": manifest.get("version"),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as handle:
        json.dump(marker, handle, indent=2, sort_keys=True)
    retired = None
    if os.path.lexists(dest):
        retired = "%s.relops-old-%d" % (dest, os.getpid())
        os.rename(dest, retired)
    try:
        os.rename(staging, dest)
    except OSError:
        if retired:
            os.rename(retired, dest)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if retired:
        shutil.rmtree(retired, ignore_errors=True)
    return int(counts["members"])


def describe(slot: Optional[Dict[str, Any]]) -> str:
    if not slot:
        return "(empty slot)\n"
    return "name: %s\nversion: %s\ndigest: %s\n" % (slot.get("name"), slot.get("version"), slot.get("digest"))


def run_module(module: AnsibleModule) -> Dict[str, Any]:
    params = module.params
    dest = params["dest"]
    before = read_slot(dest)
    if params["state"] == "query":
        return {"changed": False, "slot": before, "manifest": read_manifest(dest) if before else {}}
    if not params["src"] or not params["checksum"]:
        raise SlotError("state=present needs src (the package on the host) and checksum (sha256:<hex>)")
    if module.check_mode and not os.path.isfile(params["src"]):
        # In check mode the copy that would bring the package has not happened: report the install.
        after = {"digest": params["checksum"].lower(), "artifact": os.path.basename(params["src"])}
        return {"changed": True, "slot": after, "manifest": {}, "diff": _diff(module, dest, before, after)}
    digest = verify_digest(params["src"], params["checksum"])
    result: Dict[str, Any] = {}
    if before and digests_equal(str(before.get("digest", "")), digest):
        result = {"changed": False, "slot": before, "manifest": read_manifest(dest)}
    else:
        try:
            manifest = json.loads(read_member(params["src"], "manifest.json").decode("utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("its manifest.json is not a JSON object; build it with relops.release.package")
            limits = {"max_bytes": params["max_bytes"], "max_entries": params["max_entries"]}
            if module.check_mode:
                members = scan_archive(params["src"], dest, limits["max_bytes"], limits["max_entries"])["members"]
            else:
                members = install(params["src"], dest, digest, limits, manifest)
        except (UnsafeArchiveError, ValueError, OSError) as exc:
            raise SlotError("package %s cannot be installed into %s: %s" % (params["src"], dest, exc)) from None
        after = {
            "digest": digest,
            "artifact": os.path.basename(params["src"]),
            "name": manifest.get("name"),
            "version": manifest.get("version"),
        }
        result = {"changed": True, "slot": read_slot(dest) if not module.check_mode else after}
        result.update(manifest=manifest, members=members)
    result["diff"] = _diff(module, dest, before, result["slot"])
    return result


def _diff(module: AnsibleModule, dest: str, before: Optional[Dict[str, Any]], after: Optional[Dict[str, Any]]) -> Any:
    if not module._diff:
        return None
    return {"before": describe(before), "after": describe(after), "before_header": dest, "after_header": dest}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run_module(module)
    except SlotError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
