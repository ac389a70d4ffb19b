# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP client for OpenBao / HashiCorp Vault: one ``requests`` session, token auth.

Every error names the API path it was reading or writing, so a sealed or
unreachable server, a missing secret and a refused token are told apart and
the operator knows which secret the run needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

try:
    import requests

    REQUESTS_IMPORT_ERROR: Optional[ImportError] = None
except ImportError as exc:
    REQUESTS_IMPORT_ERROR = exc

from . import SecretsError, SecretsUnavailable

DEFAULT_TIMEOUT = 10.0

# The ``openbao`` option of every module that talks to OpenBao (documented in doc_fragments/openbao.py);
# each sub-option falls back to the BAO_* / VAULT_* environment variables.
OPENBAO_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "url": {"type": "str"},
    "token": {"type": "str", "no_log": True},
    "namespace": {"type": "str"},
    "ca_path": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
}


@dataclass(frozen=True)
class OpenBaoConfig:
    """Where the server is and how to authenticate; ``from_options`` fills gaps from the environment."""

    url: str
    token: str
    namespace: Optional[str] = None
    ca_path: Optional[str] = None
    validate_certs: bool = True
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_options(cls, options: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> "OpenBaoConfig":
        """Options win; else BAO_ADDR / VAULT_ADDR and BAO_TOKEN / VAULT_TOKEN, as community.hashi_vault reads them."""
        env = os.environ if environ is None else environ
        url = options.get("url") or env.get("BAO_ADDR") or env.get("VAULT_ADDR")
        token = options.get("token") or env.get("BAO_TOKEN") or env.get("VAULT_TOKEN")
        if not url:
            raise SecretsError("no OpenBao address: set openbao.url, or BAO_ADDR / VAULT_ADDR in the environment")
        if not token:
            raise SecretsError(
                "no OpenBao token for %s: set openbao.token, or BAO_TOKEN / VAULT_TOKEN in the environment "
                "(AWX's HashiCorp Vault credential injects it)" % url
            )
        return cls(
            url=str(url).rstrip("/"),
            token=str(token),
            namespace=options.get("namespace") or env.get("BAO_NAMESPACE") or env.get("VAULT_NAMESPACE"),
            ca_path=options.get("ca_path"),
            validate_certs=bool(options.get("validate_certs", True)),
            timeout=float(options.get("timeout") or DEFAULT_TIMEOUT),
        )


class OpenBaoClient:
    """Calls ``/v1/<path>`` with the token; ``data`` of the answer out, errors naming the path."""

    def __init__(self, config: OpenBaoConfig, session: Optional["requests.Session"] = None) -> None:
        if REQUESTS_IMPORT_ERROR is not None:
            raise SecretsError(
                "OpenBao needs the Python library requests on the controller (%s); pip install requests"
                % REQUESTS_IMPORT_ERROR
            )
        self.config = config
        self.session = session or requests.Session()
        self.session.headers["X-Vault-Token"] = config.token
        if config.namespace:
            self.session.headers["X-Vault-Namespace"] = config.namespace
        # Passed with every request too: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify: Any = config.ca_path if (config.validate_certs and config.ca_path) else config.validate_certs

    def read(self, path: str) -> Dict[str, Any]:
        return self.call("GET", path)

    def write(self, path: str, body: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        return self.call("POST", path, body)

    def call(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """The answer's JSON document (``{}`` for 204); SecretsUnavailable when the server cannot answer."""
        url = "%s/v1/%s" % (self.config.url, path.lstrip("/"))
        try:
            response = self.session.request(
                method,
                url,
                json=dict(body) if body is not None else None,
                timeout=self.config.timeout,
                verify=self.verify,
            )
        except requests.exceptions.SSLError as exc:
            raise SecretsUnavailable(
                "OpenBao %s (secret path %s): TLS certificate validation failed (%s); give the CA with ca_path"
                % (self.config.url, path, exc)
            ) from None
        except requests.RequestException as exc:
            raise SecretsUnavailable(
                "OpenBao %s is unreachable, so secret path %s cannot be used (%s); start it or fix the address, "
                "nothing was changed" % (self.config.url, path, type(exc).__name__)
            ) from None
        return _answer(response, self.config.url, method, path)


def _answer(response: "requests.Response", url: str, method: str, path: str) -> Dict[str, Any]:
    status = response.status_code
    if status == 204:
        return {}
    errors = _errors(response)
    if status == 503:
        sealed = "sealed" in errors.lower()
        raise SecretsUnavailable(
            "OpenBao %s is %s; secret path %s cannot be read (%s). Unseal it (bao operator unseal) and run "
            "again, nothing was changed" % (url, "sealed" if sealed else "unavailable (HTTP 503)", path, errors)
        )
    if status in (401, 403):
        raise SecretsError(
            "OpenBao %s refused %s %s (HTTP %d: %s); the token lacks a policy granting it, or expired"
            % (url, method, path, status, errors)
        )
    if status == 404:
        raise SecretsError("OpenBao %s has no secret at path %s (%s); write it or fix the path" % (url, path, errors))
    if status >= 400:
        raise SecretsError("OpenBao %s answered HTTP %d to %s %s: %s" % (url, status, method, path, errors))
    try:
        document: Dict[str, Any] = response.json()
    except ValueError:
        raise SecretsError(
            "OpenBao %s answered %s %s without JSON; is the URL the OpenBao API?" % (url, method, path)
        ) from None
    return document


def _errors(response: "requests.Response") -> str:
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return response.text[:200] or "no detail"
    return "; ".join(str(error) for error in errors) if errors else "no detail"
