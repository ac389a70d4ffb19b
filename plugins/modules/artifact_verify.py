#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: artifact_verify
short_description: Verify a release artifact's digest, checksum, signatures and manifest before it is used
version_added: 0.1.0
description:
  - Runs on the controller by default and checks, in one pass over the file with constant memory, the
    artifact's digest against an expected checksum, the DSSE envelope's signatures against a keyring of
    trusted keys, that the signed in-toto statement names this artifact (file name and sha256), that
    C(manifest.json) inside the package is valid and equal to the signed one, that the file name follows the
    naming convention, and that the target environment is one the manifest allows.
  - Every check runs; the result lists all C(reasons) that failed. With O(mode=fail) (the default) any reason
    fails the task; with O(mode=report) the task succeeds and returns C(verified=false) with the reasons.
  - With O(remote_src=true) the file is on the managed host. The digest is measured there by this module
    (standard library only, streaming), and the checksum and signatures are checked on the controller
    against that digest. The package manifest is not read in that case.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer)
  - C(jsonschema), C(referencing) and C(zstandard) on the controller
  - C(cryptography) on the controller, for signatures
  - With O(remote_src=true) the digest is computed on the target with its Python's standard library
options:
  path:
    description:
      - The artifact. A controller path (relative to the playbook's directory), or a path on the managed host
        with O(remote_src=true).
    type: path
    required: true
  remote_src:
    description:
      - Measure the digest of O(path) on the managed host instead of the controller.
    type: bool
    default: false
  algorithm:
    description:
      - The digest algorithm returned as C(digest). The sha256 digest is always computed too, because the
        signed statement names the artifact by it.
    type: str
    choices: [sha256, sha512]
    default: sha256
  checksum:
    description:
      - The expected digest, as C(sha256:<hex>) or C(sha512:<hex>); or the path of a C(sha256sum)/C(sha512sum)
        output file (GNU or BSD style) holding a line for the artifact's file name; or a C(file://) or
        C(https://) URL of such a file. Plain C(http://) is refused.
    type: str
  envelope:
    description:
      - Controller path of the DSSE envelope written by M(relops.release.artifact_sign) or another DSSE signer
        (securesystemslib, in-toto). Requires O(keyring).
      - Read as the DSSE protocol says, with base64 in the standard or URL-safe alphabet, padded or not; a
        signature's C(keyid) only orders the keyring keys tried (an unknown or empty one tries every key of a
        fitting type); ECDSA signatures in DER or raw r||s.
    type: path
  keyring:
    description:
      - Trusted public keys, as a mapping or the path of a YAML or JSON file. C(keys) is a list of entries with
        C(public_key) (PEM text) or C(public_key_file), an optional C(name), optional C(keyid) (must equal the
        key's fingerprint, the hex SHA-256 of its DER SubjectPublicKeyInfo), and optional C(not_before) and
        C(not_after) (RFC 3339). C(revoked) lists key ids (or mappings with C(keyid) and C(reason)) whose
        signatures are refused.
    type: raw
  required_signatures:
    description:
      - How many distinct trusted, valid, unrevoked keys must have signed the envelope.
    type: int
    default: 1
  check_manifest:
    description:
      - Read C(manifest.json) from the package and check its schema, the naming convention, the
        O(environment), and that it equals the manifest in the signed provenance.
    type: bool
    default: true
  name_pattern:
    description:
      - The naming convention the artifact's file name must follow.
    type: str
    default: "{name}-{version}.{ext}"
  environment:
    description:
      - The environment the artifact is about to be deployed to; it must be listed in the manifest's environments.
    type: str
  mode:
    description:
      - V(fail) fails the task when any check fails; V(report) returns the reasons without failing.
    type: str
    choices: [fail, report]
    default: fail
  validate_certs:
    description:
      - Validate the TLS certificate of an C(https://) O(checksum) URL. Prefer O(ca_path) to turning this off.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle for an C(https://) O(checksum) URL.
    type: path
  policy:
    description:
      - The policy file whose C(environments) entry for O(environment) says what verification must show.
        Default is the policy shipped with the collection, which enforces C(production).
      - In an enforced environment a verification that checked neither a checksum nor a signature fails,
        naming what is missing, and O(required_signatures) is raised to the environment's
        C(signatures_required). Elsewhere such a verification returns RV(verified=false) with a warning,
        since a manifest alone proves nothing about who built the package.
    type: path
  record:
    description:
      - Open the release's record in the ledger (or continue the unfinished one with the same id) and write
        what this verification found as its C(verification) stage. Needs O(environment) and the package's
        manifest. Returns RV(release_id), which M(relops.release.risk_assess), M(relops.release.change_gate)
        and M(relops.release.release_record) take (docs/release-record.md).
    type: bool
    default: false
  release_id:
    description:
      - With O(record=true), the record's id. Default C(<service>@<version>/<environment>/<digest prefix>), so a
        rerun after a crash continues the same record; an attempt after the record's outcome gets C(#<n>).
    type: str
extends_documentation_fragment:
  - relops.release.paths
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.ledger
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
    details: Only reads; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: relops.release.artifact_sign
  - module: relops.release.package
"""

EXAMPLES = r"""
- name: Verify the package before anything uses it
  relops.release.artifact_verify:
    path: build/artifacts/demo-app-1.4.0.tar.zst
    checksum: "{{ built.digest }}"
    envelope: build/artifacts/demo-app-1.4.0.tar.zst.intoto.json
    keyring: keys/keyring.yml
    required_signatures: 2
    environment: production
  run_once: true
  delegate_to: localhost

- name: Check the copy on the host against a published SHA256SUMS
  relops.release.artifact_verify:
    path: /opt/releases/demo-app-1.4.0.tar.zst
    remote_src: true
    checksum: https://artifacts.example.com/demo-app/1.4.0/SHA256SUMS

- name: Report without failing, for an audit
  relops.release.artifact_verify:
    path: build/artifacts/demo-app-1.4.0.tar.zst
    envelope: build/artifacts/demo-app-1.4.0.tar.zst.intoto.json
    keyring: keys/keyring.yml
    mode: report
  register: audit
"""

RETURN = r"""
verified:
  description: Whether every check passed and at least a checksum or a signature was checked (RV(checked)).
  returned: always
  type: bool
checked:
  description: What vouched for the package, V(checksum) and/or V(signatures); empty means nothing did.
  returned: always
  type: list
  elements: str
  sample: [checksum, signatures]
release_id:
  description: With O(record=true), the release record's id.
  returned: when O(record=true)
  type: str
  sample: payments-api@2.4.0/production/9f2c0d6c4b4e
digest:
  description: The digest as C(<algorithm>:<hex>).
  returned: always
  type: str
  sample: sha256:1ffe70206feaf08c0b22cdf9ece918324c5d3cf6157e069102740a158c454c2d
algorithm:
  description: The algorithm of C(digest).
  returned: always
  type: str
  sample: sha256
sha256:
  description: Hex SHA-256 of the artifact.
  returned: always
  type: str
size:
  description: Bytes read.
  returned: always
  type: int
digests:
  description: Every digest computed in the one pass over the file, by algorithm.
  returned: always
  type: dict
signers:
  description: Key ids (fingerprints) of the trusted keys whose signatures verified.
  returned: always
  type: list
  elements: str
manifest:
  description: The package's manifest.
  returned: when O(check_manifest=true) and the package could be read on the controller
  type: dict
reasons:
  description: Every check that failed, each naming the value and what to do.
  returned: always
  type: list
  elements: str
  sample: ["signature 0 is by key 3b1f..., which is revoked (key leaked)"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.artifact_specs import ARTIFACT_VERIFY_SPEC
from ansible_collections.relops.release.plugins.module_utils.digests import (
    ChecksumError,
    digests_equal,
    file_digests,
    mismatch_message,
    parse_prefixed,
)


def run_module(module: AnsibleModule) -> None:
    path = module.params["path"]
    if not os.path.isfile(path):
        module.fail_json(msg="artifact %s does not exist on this host or is not a file" % path)
    expected = None
    try:
        if module.params["checksum"]:
            expected = parse_prefixed(module.params["checksum"])
        algorithms = [module.params["algorithm"], "sha256"] + ([expected[0]] if expected else [])
        digests, size = file_digests(path, algorithms)
    except ChecksumError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="artifact %s cannot be read (%s)" % (path, exc.strerror))
    algorithm = module.params["algorithm"]
    result = {
        "changed": False,
        "path": path,
        "algorithm": algorithm,
        "digest": "%s:%s" % (algorithm, digests[algorithm]),
        "sha256": digests["sha256"],
        "digests": digests,
        "size": size,
        "verified": True,
        "reasons": [],
    }
    if expected and not digests_equal(expected[1], digests[expected[0]]):
        reason = mismatch_message(os.path.basename(path), expected[0], expected[1], digests[expected[0]], size)
        result.update(verified=False, reasons=[reason])
        module.fail_json(msg=reason, **result)
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARTIFACT_VERIFY_SPEC, supports_check_mode=True)
    run_module(module)


if __name__ == "__main__":
    main()
