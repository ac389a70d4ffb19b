# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``instance`` option group every ITSM module takes, specified once.

Names, defaults and environment fallbacks follow servicenow.itsm's ``instance``
option (its ``module_utils/instance_config.py``: ``SN_HOST``, ``SN_USERNAME``,
``SN_PASSWORD``, ``SN_CLIENT_ID``, ``SN_CLIENT_SECRET``, ``SN_REFRESH_TOKEN``,
``SN_GRANT_TYPE``, ``SN_ACCESS_TOKEN``, ``SN_API_KEY``, ``SN_TIMEOUT``,
``SN_CLIENT_CERTIFICATE_FILE``, ``SN_CLIENT_KEY_FILE``; ``api_path`` defaulting
to ``api/now``), so its credentials and the AWX "ServiceNow ITSM Credential"
type work unchanged. The matching documentation is the ``relops.release.itsm``
doc fragment; docs/itsm.md has the two side by side.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .errors import ITSMError

BACKENDS = ("local", "servicenow")
GRANT_TYPES = ("password", "refresh_token", "client_credentials")

ENV_FALLBACKS: Dict[str, str] = {
    "host": "SN_HOST",
    "username": "SN_USERNAME",
    "password": "SN_PASSWORD",
    "client_id": "SN_CLIENT_ID",
    "client_secret": "SN_CLIENT_SECRET",
    "refresh_token": "SN_REFRESH_TOKEN",
    "grant_type": "SN_GRANT_TYPE",
    "access_token": "SN_ACCESS_TOKEN",
    "api_key": "SN_API_KEY",
    "timeout": "SN_TIMEOUT",
    "client_certificate_file": "SN_CLIENT_CERTIFICATE_FILE",
    "client_key_file": "SN_CLIENT_KEY_FILE",
}
DEFAULT_API_PATH = "api/now"
_API_PATH = re.compile(r"^[A-Za-z0-9_.~-]+(/[A-Za-z0-9_.~-]+)*$")
SECRET_OPTIONS = ("password", "client_secret", "refresh_token", "access_token", "api_key")

INSTANCE_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "backend": {"type": "str", "choices": list(BACKENDS)},
    "instance": {
        "type": "dict",
        "options": {
            "host": {"type": "str"},
            "api_path": {"type": "str", "default": DEFAULT_API_PATH},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "client_id": {"type": "str"},
            "client_secret": {"type": "str", "no_log": True},
            "refresh_token": {"type": "str", "no_log": True},
            "grant_type": {"type": "str", "choices": list(GRANT_TYPES)},
            "access_token": {"type": "str", "no_log": True},
            "api_key": {"type": "str", "no_log": True},
            "timeout": {"type": "float"},
            "validate_certs": {"type": "bool", "default": True},
            "ca_path": {"type": "path"},
            "client_certificate_file": {"type": "path"},
            "client_key_file": {"type": "path"},
            "proxy": {"type": "str"},
            "custom_headers": {"type": "dict"},
            "max_retries": {"type": "int", "default": 5},
            "max_retry_time": {"type": "float", "default": 60.0},
        },
    },
}


@dataclass
class InstanceConfig:
    """Resolved connection settings, with where each credential came from (for error messages)."""

    host: str
    api_path: str = DEFAULT_API_PATH
    username: Optional[str] = None
    password: Optional[str] = None
    client_id: Optional[str] = None
    client_secret: Optional[str] = None
    refresh_token: Optional[str] = None
    grant_type: Optional[str] = None
    access_token: Optional[str] = None
    api_key: Optional[str] = None
    timeout: float = 30.0
    validate_certs: bool = True
    ca_path: Optional[str] = None
    client_certificate_file: Optional[str] = None
    client_key_file: Optional[str] = None
    proxy: Optional[str] = None
    custom_headers: Dict[str, str] = field(default_factory=dict)
    max_retries: int = 5
    max_retry_time: float = 60.0
    env_used: List[str] = field(default_factory=list)

    @property
    def api_root(self) -> str:
        """The path the Table, Attachment and IRE APIs live under (``/api/now`` unless api_path moves it)."""
        return "/" + self.api_path.strip("/")

    @property
    def base_url(self) -> str:
        host = self.host.rstrip("/")
        return host if host.startswith(("http://", "https://")) else "https://" + host

    def auth_method(self) -> str:
        """Name the authentication this configuration selects, in the order the client applies them."""
        if self.api_key:
            return "api_key"
        if self.access_token:
            return "bearer"
        if self.client_id:
            return "oauth " + self.effective_grant_type()
        if self.username:
            return "basic"
        if self.client_certificate_file:
            return "mutual_tls"
        return "none"

    def effective_grant_type(self) -> str:
        if self.grant_type:
            return self.grant_type
        if self.refresh_token and not self.password:
            return "refresh_token"
        if not self.username:
            return "client_credentials"
        return "password"


def resolve_backend(backend: Optional[str], instance: Optional[Mapping[str, Any]], environ: Mapping[str, str]) -> str:
    """Pick the backend: the option when given, ServiceNow when a host is configured, else local."""
    if backend:
        return backend
    host = (instance or {}).get("host") or environ.get("SN_HOST")
    return "servicenow" if host else "local"


def resolve_instance(
    options: Optional[Mapping[str, Any]], environ: Optional[Mapping[str, str]] = None
) -> InstanceConfig:
    """Merge task options with the SN_* environment fallbacks; the task wins."""
    env = os.environ if environ is None else environ
    given = dict(options or {})
    values: Dict[str, Any] = {}
    used: List[str] = []
    for name, variable in ENV_FALLBACKS.items():
        value = given.get(name)
        if value in (None, "") and env.get(variable):
            value = env[variable]
            used.append(variable)
        values[name] = value
    for name in ("client_certificate_file", "client_key_file"):
        # The task's type: path options arrive expanded; the environment's do not.
        values[name] = os.path.expanduser(values[name]) if values[name] else values[name]
    if not values["host"]:
        raise ITSMError(
            "backend servicenow needs a host; set instance.host or the SN_HOST environment variable "
            "(e.g. https://example.service-now.com), or use backend: local"
        )
    values["host"], url_username, url_password = split_host_credentials(str(values["host"]))
    if url_username and not values["username"]:
        values["username"] = url_username
    if url_password and not values["password"]:
        values["password"] = url_password
    timeout = values.pop("timeout")
    try:
        timeout_value = float(timeout) if timeout not in (None, "") else 30.0
    except ValueError:
        raise ITSMError(
            "timeout %r is not a number of seconds; set SN_TIMEOUT or instance.timeout to e.g. 30" % timeout
        ) from None
    grant = values.get("grant_type")
    if grant and grant not in GRANT_TYPES:
        raise ITSMError(
            "grant_type %r is not one of %s; fix SN_GRANT_TYPE or instance.grant_type" % (grant, ", ".join(GRANT_TYPES))
        )
    config = InstanceConfig(
        timeout=timeout_value,
        api_path=_check_api_path(given.get("api_path") or DEFAULT_API_PATH),
        validate_certs=bool(given.get("validate_certs", True)),
        ca_path=given.get("ca_path"),
        proxy=given.get("proxy"),
        custom_headers={str(k): str(v) for k, v in (given.get("custom_headers") or {}).items()},
        max_retries=int(given.get("max_retries", 5) if given.get("max_retries") is not None else 5),
        max_retry_time=float(given.get("max_retry_time", 60.0) if given.get("max_retry_time") is not None else 60.0),
        env_used=used,
        **values,
    )
    _check_pairs(config)
    return config


def split_host_credentials(host: str) -> Tuple[str, Optional[str], Optional[str]]:
    """Take ``user:password@`` out of a host URL: return the bare host, the user and the password.

    Every message names the instance by its host, so credentials written into instance.host or SN_HOST
    would show in them (and in the task output at any verbosity); they become basic-auth credentials
    instead, used when instance.username and password are not set.
    """
    match = re.match(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?)([^/@]*)@(.*)$", host, re.DOTALL)
    if not match:
        return host, None, None
    scheme, userinfo, rest = match.groups()
    username, _sep, password = userinfo.partition(":")
    return scheme + rest, urllib.parse.unquote(username) or None, urllib.parse.unquote(password) or None


def _check_api_path(api_path: str) -> str:
    if not _API_PATH.match(api_path.strip("/")):
        raise ITSMError(
            "instance.api_path %r is not a URL path; give the path the instance serves its REST APIs under, "
            "e.g. api/now (the default) or api/x_acme_proxy/v1" % api_path
        )
    return api_path.strip("/")


def _check_pairs(config: InstanceConfig) -> None:
    if config.client_id and not config.client_secret:
        raise ITSMError("instance.client_id is set without client_secret; set both (or SN_CLIENT_SECRET) for OAuth")
    if config.client_certificate_file and not config.client_key_file:
        raise ITSMError(
            "instance.client_certificate_file needs client_key_file for mutual TLS; set both "
            "(or SN_CLIENT_CERTIFICATE_FILE and SN_CLIENT_KEY_FILE)"
        )
    if config.auth_method() == "none":
        raise ITSMError(
            "no ServiceNow credentials for %s; set instance.username and password (SN_USERNAME, SN_PASSWORD), "
            "client_id and client_secret for OAuth, access_token, api_key, or a client certificate" % config.host
        )
