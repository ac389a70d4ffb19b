# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  openbao:
    description:
      - The OpenBao (or HashiCorp Vault, same API) server to use, and the token. See C(docs/secrets.md).
    type: dict
    default: {}
    suboptions:
      url:
        description: The server's address. Defaults to E(BAO_ADDR), then E(VAULT_ADDR).
        type: str
      token:
        description: The token. Defaults to E(BAO_TOKEN), then E(VAULT_TOKEN). Never logged.
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
"""
