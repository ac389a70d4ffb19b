# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: transit_keyring
short_description: Keyring entries for every version of an OpenBao transit signing key
version_added: 0.1.0
description:
  - Reads a transit key from OpenBao (or HashiCorp Vault) and returns one keyring entry per key version
    (C(name), C(public_key) in PEM, C(not_before) and, for versions that were replaced, C(not_after)),
    the entries M(relops.release.artifact_verify) reads in its keyring's C(keys) list.
  - A version below the key's C(min_encryption_version) is rotated out, valid until its successor was
    created. Other replaced versions stay valid, for O(retire_after) seconds past their successor's
    creation when it is given. See C(docs/secrets.md).
  - Only public keys are read; the token needs read access to C(<mount>/keys/<key>).
author:
  - relops.release maintainers (@relops)
options:
  _terms:
    description: Names of transit keys.
    type: list
    elements: str
    required: true
  mount:
    description: Where the transit engine is mounted.
    type: str
    default: transit
  retire_after:
    description: Seconds a replaced version stays trusted after its successor was created; unset, until the keyring changes.
    type: float
  url:
    description: The server's address. Defaults to E(BAO_ADDR), then E(VAULT_ADDR).
    type: str
  token:
    description: The token. Defaults to E(BAO_TOKEN), then E(VAULT_TOKEN).
    type: str
  namespace:
    description: The namespace. Defaults to E(BAO_NAMESPACE), then E(VAULT_NAMESPACE).
    type: str
  ca_path:
    description: CA bundle that signed the server's TLS certificate.
    type: path
  validate_certs:
    description: Whether to check the server's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 10.0
seealso:
  - module: relops.release.artifact_sign
  - module: relops.release.artifact_verify
"""

EXAMPLES = r"""
- name: Write the keyring from the release signing key's versions
  ansible.builtin.copy:
    content: "{{ {'keys': lookup('relops.release.transit_keyring', 'release-signing', retire_after=86400)} | to_nice_yaml }}"
    dest: /etc/relops/keyring.yml
    mode: "0644"
"""

RETURN = r"""
_raw:
  description: One keyring entry per version of each key named, oldest first.
  type: list
  elements: dict
"""

from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.relops.release.plugins.plugin_utils.artifacts import ArtifactError
from ansible_collections.relops.release.plugins.plugin_utils.secrets import SecretsError
from ansible_collections.relops.release.plugins.plugin_utils.secrets.openbao import OpenBaoClient, OpenBaoConfig
from ansible_collections.relops.release.plugins.plugin_utils.secrets.transit import keyring_entries, read_key

CONNECTION_OPTIONS = ("url", "token", "namespace", "ca_path", "validate_certs", "timeout")


class LookupModule(LookupBase):  # type: ignore[misc]  # ansible-core ships no types
    def run(self, terms: List[Any], variables: Optional[Dict[str, Any]] = None, **kwargs: Any) -> List[Any]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            client = OpenBaoClient(
                OpenBaoConfig.from_options({name: self.get_option(name) for name in CONNECTION_OPTIONS})
            )
            entries: List[Any] = []
            for term in terms:
                info = read_key(client, str(self.get_option("mount")), str(term))
                entries.extend(keyring_entries(info, self.get_option("retire_after")))
        except (SecretsError, ArtifactError) as exc:
            raise AnsibleLookupError(str(exc)) from None
        # A lookup returns a list of terms' values; wantlist-free use gets the entries as one list.
        return [entries]
