# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: package
short_description: Build a reproducible release package with its manifest and checksums
version_added: 0.1.0
description:
  - Builds C(<name>-<version>.tar.gz) or C(.tar.zst) on the controller from a directory (the payload)
    and a release manifest. The archive holds C(manifest.json), C(SHA256SUMS) of every payload file,
    and the payload under C(payload/).
  - Reproducible. The same directory and manifest give byte-identical archives. Entries are sorted,
    every mtime is 1980-01-01 (or O(mtime)) so headers stay the same from one release to the next, owner and group are 0 with no names,
    modes are normalised to 0644 or 0755, and the compressed stream carries no host name or build time.
  - The manifest is validated against the collection's JSON Schema first; every missing or invalid field
    is named with the rule it breaks. Config templates and health check scripts the manifest declares
    must be present in the payload.
  - Rebuilding a package that already exists with the same bytes reports no change.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(jsonschema), C(referencing) and C(zstandard) on the controller
options:
  src:
    description:
      - Directory whose content becomes the payload. Relative paths are resolved from the playbook's directory.
      - Symlinks must stay inside the directory; devices, FIFOs and setuid or setgid files are refused.
    type: path
    required: true
  manifest:
    description:
      - The release manifest, as a mapping or as the path of a JSON or YAML file.
      - Mandatory fields are name, version, owner, team, service, environments, dependencies,
        health_checks, rollback_plan, source_revision and created. See C(docs/artifacts.md).
    type: raw
    required: true
  dest:
    description:
      - Directory the package is written to (created when missing). The file name follows O(name_pattern).
    type: path
    required: true
  format:
    description:
      - Compression of the archive. V(tar.zst) is smaller and faster to unpack.
    type: str
    choices: [tar.gz, tar.zst]
    default: tar.gz
  name_pattern:
    description:
      - The naming convention, with C({name}), C({version}) and C({ext}) placeholders. The result must be a
        safe file name (letters, digits and C(.), C(_), C(+), C(-)).
    type: str
    default: "{name}-{version}.{ext}"
  mtime:
    description:
      - Seconds since the epoch stamped on every entry. Defaults to 315532800 (1980-01-01T00:00:00Z).
    type: int
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Builds in a temporary file and reports the name and digest the package would have, without writing O(dest).
  diff_mode:
    support: full
    details: Shows the package digest before and after.
seealso:
  - module: relops.release.artifact_sign
  - module: relops.release.artifact_verify
"""

EXAMPLES = r"""
- name: Package the demo app
  relops.release.package:
    src: demo_app/app
    manifest: demo_app/manifest.json
    dest: build/artifacts
    format: tar.zst
  run_once: true
  register: built

- name: Show the digest to sign
  ansible.builtin.debug:
    msg: "{{ built.name }} {{ built.digest }}"
"""

RETURN = r"""
path:
  description: Where the package is (or would be, in check mode).
  returned: success
  type: str
  sample: /srv/artifacts/demo-app-1.4.0.tar.zst
name:
  description: The package file name given by the naming convention.
  returned: success
  type: str
  sample: demo-app-1.4.0.tar.zst
format:
  description: The archive format.
  returned: success
  type: str
  sample: tar.zst
sha256:
  description: Hex SHA-256 of the package.
  returned: success
  type: str
  sample: 1ffe70206feaf08c0b22cdf9ece918324c5d3cf6157e069102740a158c454c2d
digest:
  description: The same digest as C(sha256:<hex>), the form O(relops.release.artifact_verify#module:checksum) accepts.
  returned: success
  type: str
  sample: sha256:1ffe70206feaf08c0b22cdf9ece918324c5d3cf6157e069102740a158c454c2d
size:
  description: Package size in bytes.
  returned: success
  type: int
  sample: 1530
files:
  description: Number of payload files.
  returned: success
  type: int
  sample: 4
payload_bytes:
  description: Total size of the payload files before compression.
  returned: success
  type: int
  sample: 1255
manifest:
  description: The validated manifest embedded as C(manifest.json).
  returned: success
  type: dict
"""
