# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  backend:
    description:
      - Where change requests and CIs live.
      - V(local) keeps them in the release ledger (see O(ledger_url)), with the same change states,
        transitions and approvals as ServiceNow.
      - V(servicenow) talks to the instance named by O(instance.host) or E(SN_HOST).
      - When not set, V(servicenow) is used if a host is configured, otherwise V(local).
    type: str
    choices: [local, servicenow]
  instance:
    description:
      - ServiceNow instance information, the same option group as the C(servicenow.itsm) collection,
        with the same environment fallbacks, so its AWX credential type works unchanged.
      - Set it once for a play with C(module_defaults) for C(group/relops.release.itsm).
      - Authentication is chosen in this order, O(instance.api_key), O(instance.access_token),
        OAuth when O(instance.client_id) is set, basic with O(instance.username), then mutual TLS alone.
    type: dict
    suboptions:
      host:
        description:
          - The instance URL or host name, for example C(https://example.service-now.com).
          - Falls back to E(SN_HOST).
          - Credentials written into it (C(https://user:password@host)) are taken out of the host and used as
            O(instance.username) and O(instance.password) when those are not set, so no message or result
            shows them.
        type: str
      api_path:
        description:
          - The path the instance serves the Table, Attachment and Identification and Reconciliation APIs under,
            as in C(servicenow.itsm), for instances behind a scripted REST API or a path-rewriting proxy.
          - The Change Management API stays at C(/api/sn_chg_rest/change).
        type: str
        default: api/now
      username:
        description: User name for basic authentication or the OAuth password grant. Falls back to E(SN_USERNAME).
        type: str
      password:
        description: Password of O(instance.username). Falls back to E(SN_PASSWORD).
        type: str
      client_id:
        description: OAuth client id; selects OAuth. Falls back to E(SN_CLIENT_ID).
        type: str
      client_secret:
        description: OAuth client secret. Falls back to E(SN_CLIENT_SECRET).
        type: str
      refresh_token:
        description: OAuth refresh token for the V(refresh_token) grant. Falls back to E(SN_REFRESH_TOKEN).
        type: str
      grant_type:
        description:
          - OAuth grant. Falls back to E(SN_GRANT_TYPE).
          - Tokens are refreshed a minute before they expire, and a request refused with 401 re-authenticates once.
        type: str
        choices: [password, refresh_token, client_credentials]
      access_token:
        description: A bearer token obtained elsewhere. Falls back to E(SN_ACCESS_TOKEN).
        type: str
      api_key:
        description: An API key sent in the C(x-sn-apikey) header. Falls back to E(SN_API_KEY).
        type: str
      timeout:
        description: Seconds to wait for each response. Falls back to E(SN_TIMEOUT), then 30.
        type: float
      validate_certs:
        description: Verify the instance's TLS certificate.
        type: bool
        default: true
      ca_path:
        description: A CA bundle to verify the instance's certificate with.
        type: path
      client_certificate_file:
        description: Client certificate (PEM) for mutual TLS. Falls back to E(SN_CLIENT_CERTIFICATE_FILE).
        type: path
      client_key_file:
        description: Private key (PEM) of O(instance.client_certificate_file). Falls back to E(SN_CLIENT_KEY_FILE).
        type: path
      proxy:
        description: Proxy URL for all requests. Without it the E(HTTPS_PROXY) and E(NO_PROXY) variables apply.
        type: str
      custom_headers:
        description: Extra HTTP headers sent with every request.
        type: dict
      max_retries:
        description:
          - How many times a request is retried after 429 (honouring C(Retry-After)), 502, 503, 504 or a
            connection error, with exponential backoff and jitter.
        type: int
        default: 5
      max_retry_time:
        description: Upper bound in seconds on the time spent retrying one request.
        type: float
        default: 60.0
"""
