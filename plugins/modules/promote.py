# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The implementation is the controller-side action plugin of the same name;
# this file holds its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: promote
short_description: Promote a verified release artifact from one environment's repository to the next
version_added: 0.1.0
description:
  - Fetches the artifact and its envelope from O(from_repository), verifies them exactly as
    M(relops.release.artifact_verify) does (signatures against O(keyring), statement subject, manifest, naming
    convention, and that O(to_environment) is one the manifest allows), and only then copies both to
    O(to_repository), the artifact first, and records the promotion in the release ledger.
  - Repositories are directories (a path or C(file://) URL; files land through a rename) or HTTP raw
    repositories such as Nexus or Artifactory raw repositories (C(http://) or C(https://); read with GET,
    written with PUT).
  - Idempotent. When O(to_repository) already holds the artifact with the same sha256 and the same envelope,
    nothing changes and nothing is recorded. When it holds the name with another digest the task fails,
    because a released version is immutable.
  - Runs on the controller. Use it with C(run_once=true).
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); nothing is installed on the target
  - C(jsonschema), C(referencing) and C(zstandard) on the controller
  - C(cryptography) on the controller, for signatures
  - C(requests) on the controller, for HTTP repositories
  - C(psycopg) (version 3) on the controller, only for a PostgreSQL ledger
options:
  name:
    description: The artifact's file name, for example C(demo-app-1.4.0.tar.zst).
    type: str
    required: true
  from_repository:
    description: The repository it is promoted from (directory, C(file://), C(http://) or C(https://) URL).
    type: str
    required: true
  to_repository:
    description: The repository it is promoted to.
    type: str
    required: true
  from_environment:
    description: The environment the artifact comes from, for the ledger.
    type: str
    required: true
  to_environment:
    description: The environment it is promoted to; the manifest must list it.
    type: str
    required: true
  keyring:
    description: Trusted public keys, as for O(relops.release.artifact_verify#module:keyring).
    type: raw
    required: true
  required_signatures:
    description: How many distinct trusted keys must have signed.
    type: int
    default: 1
  checksum:
    description: An expected checksum as well, in any form O(relops.release.artifact_verify#module:checksum) takes.
    type: str
  name_pattern:
    description: The naming convention O(name) must follow.
    type: str
    default: "{name}-{version}.{ext}"
  envelope_suffix:
    description: The envelope's name is O(name) followed by this suffix.
    type: str
    default: .intoto.json
  url_username:
    description: User for HTTP repositories (basic authentication).
    type: str
  url_password:
    description: Password or token for HTTP repositories. Never logged.
    type: str
  validate_certs:
    description: Validate HTTPS certificates. Prefer O(ca_path) to turning this off.
    type: bool
    default: true
  ca_path:
    description: CA bundle for HTTPS repositories.
    type: path
  permit:
    description:
      - The release permit this promotion runs under, the DSSE envelope M(relops.release.change_gate) returned
        as RV(relops.release.change_gate#module:permit) (a mapping or its JSON text); when not set, the
        C(relops_release_permit) variable.
      - Read only when the policy (C(relops_policy), else C(release_policy), else the collection's default)
        marks O(to_environment) enforced (production in the default policy). There the copy is refused,
        changing nothing, unless the permit's signature verifies against the keyring in
        C(relops_permit_keyring), it names O(to_environment) and the artifact's sha256 digest, it is between
        its C(not_before) and C(not_after), and the ledger does not list it as revoked. The permit's hosts
        are not checked, because a repository is not a host.
      - A promotion that changes nothing (the target already holds the same artifact and envelope) needs no
        permit.
    type: raw
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - relops.release.attributes.controller
  - relops.release.ledger
attributes:
  check_mode:
    support: full
    details: Fetches and verifies, then reports whether the copy would happen, without writing or recording.
  diff_mode:
    support: full
    details: Shows the artifact's digest in the target repository before and after.
seealso:
  - module: relops.release.artifact_verify
"""

EXAMPLES = r"""
- name: Promote 1.4.0 from staging to production
  relops.release.promote:
    name: demo-app-1.4.0.tar.zst
    from_repository: https://nexus.example.com/repository/releases-staging/demo-app
    to_repository: https://nexus.example.com/repository/releases-production/demo-app
    from_environment: staging
    to_environment: production
    keyring: keys/keyring.yml
    required_signatures: 2
    url_username: "{{ nexus_user }}"
    url_password: "{{ nexus_token }}"
    # Production is enforced: the permit the change gate signed for this release (release role: set as
    # relops_release_permit after the gate).
    permit: "{{ gate.permit }}"
  run_once: true
"""

RETURN = r"""
name:
  description: The artifact's file name.
  returned: success
  type: str
sha256:
  description: The promoted artifact's digest.
  returned: success
  type: str
signers:
  description: Key ids of the trusted keys whose signatures verified.
  returned: success
  type: list
  elements: str
verified:
  description: Whether verification passed (always true on success).
  returned: always
  type: bool
reasons:
  description: Why verification failed.
  returned: failure
  type: list
  elements: str
from_repository:
  description: The source repository.
  returned: success
  type: str
to_repository:
  description: The target repository.
  returned: success
  type: str
manifest:
  description: The artifact's manifest.
  returned: success
  type: dict
promotion:
  description: The ledger row recorded for this promotion.
  returned: when the artifact was copied
  type: dict
permit_id:
  description: The release permit the promotion ran under.
  returned: when O(to_environment) is enforced and the artifact was, or in check mode would be, copied
  type: str
release_id:
  description: The release the permit was issued for.
  returned: when O(to_environment) is enforced and the artifact was, or in check mode would be, copied
  type: str
"""
