# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: artifact_sign
short_description: Sign a release artifact with an in-toto SLSA provenance statement in a DSSE envelope
version_added: 0.1.0
description:
  - Writes an in-toto Statement v1 whose subject is the artifact's file name and sha256 digest and whose
    predicate is SLSA provenance v1 built from the package's manifest (external parameters, source revision,
    creation time) and O(build_context); wraps it in a DSSE envelope and signs the envelope's
    pre-authentication encoding with every key in O(keys).
  - Keys are PEM private keys, Ed25519, ECDSA P-256 (signed with SHA-256) or RSA of 2048 bits or more
    (signed with RSA-PSS, SHA-256, MGF1). A signature's key id is the public key's fingerprint, the hex
    SHA-256 of its DER SubjectPublicKeyInfo, which is what keyrings list.
  - A key can also stay in OpenBao (or HashiCorp Vault). With O(keys[].transit) the envelope's
    pre-authentication encoding is signed by the transit engine, with an C(ed25519) or C(ecdsa-p256) key,
    and the private key never reaches the controller. The envelope is the same; its key id is the
    fingerprint of the transit key version's exported public key, which the keyring lists (C(docs/secrets.md)).
  - Signing again with the same keys when the envelope already holds valid signatures of the same statement
    reports no change. A different statement (the artifact changed) or a new key rewrites the envelope.
  - See C(docs/artifacts.md) for key generation and the trust model.
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(jsonschema), C(referencing) and C(zstandard) on the controller
  - C(cryptography) on the controller, for signatures
options:
  artifact:
    description:
      - The package to sign, on the controller.
    type: path
    required: true
  envelope:
    description:
      - Where to write the envelope. Defaults to the artifact's path with C(.intoto.json) appended.
    type: path
  keys:
    description:
      - One or more private keys; each adds one signature to the envelope.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Controller path of a PEM private key.
        type: path
      content:
        description: The PEM private key itself (for example from Ansible Vault). Never logged.
        type: str
      passphrase:
        description: Passphrase of an encrypted key. Never logged.
        type: str
      transit:
        description:
          - A key in OpenBao's transit engine, reached with O(openbao). Exclusive with O(keys[].path) and
            O(keys[].content).
        type: dict
        suboptions:
          key:
            description: The transit key's name.
            type: str
            required: true
          mount:
            description: Where the transit engine is mounted.
            type: str
            default: transit
          version:
            description:
              - The key version to sign with. Defaults to the latest. A version below the key's
                C(min_encryption_version) is refused.
            type: int
  manifest:
    description:
      - The manifest to put in the provenance, as a mapping or a file path. Defaults to C(manifest.json)
        read from the package, which is what O(relops.release.artifact_verify#module:check_manifest) compares against.
    type: raw
  build_context:
    description:
      - Build details for the provenance. C(builder_id) (URI of the builder), C(invocation_id) and
        C(parameters) (a mapping recorded as internal parameters). Leave out values that change on every run,
        or signing is never idempotent.
    type: dict
    default: {}
extends_documentation_fragment:
  - relops.release.openbao
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
attributes:
  check_mode:
    support: full
    details: Reports whether the envelope would be written, without writing it.
  diff_mode:
    support: full
    details: Shows the key ids that signed before and after.
seealso:
  - module: relops.release.package
  - module: relops.release.artifact_verify
"""

EXAMPLES = r"""
- name: Sign with the release key and the security team's key
  relops.release.artifact_sign:
    artifact: "{{ built.path }}"
    keys:
      - path: keys/release-bot.pem
      - content: "{{ security_signing_key }}"
        passphrase: "{{ security_signing_passphrase }}"
    build_context:
      builder_id: https://awx.example.com/job_templates/12
  run_once: true
  register: signed

- name: Sign with a key that stays in OpenBao (BAO_ADDR and BAO_TOKEN come from the environment)
  relops.release.artifact_sign:
    artifact: "{{ built.path }}"
    keys:
      - transit: {key: release-signing}
  run_once: true
"""

RETURN = r"""
envelope:
  description: Path of the DSSE envelope.
  returned: success
  type: str
  sample: /srv/artifacts/demo-app-1.4.0.tar.zst.intoto.json
artifact:
  description: Path of the signed artifact.
  returned: success
  type: str
sha256:
  description: Hex SHA-256 of the artifact, the statement's subject digest.
  returned: success
  type: str
keyids:
  description: Key ids (fingerprints) of the signing keys.
  returned: success
  type: list
  elements: str
algorithms:
  description: Signature algorithm of each key, in the order of O(keys).
  returned: success
  type: list
  elements: str
  sample: [ed25519, ecdsa-p256-sha256, rsa-pss-sha256]
public_keys:
  description:
    - The PEM public key of each key, in the order of O(keys); what a keyring lists (for a transit key, the
      exported public key of the version that signed).
  returned: success
  type: list
  elements: str
payload_type:
  description: The DSSE payload type.
  returned: success
  type: str
  sample: application/vnd.in-toto+json
subject:
  description: The statement's subject.
  returned: success
  type: list
  elements: dict
"""
