# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one ServiceNow HTTP client of relops.release, built on ``requests``.

It authenticates (basic, OAuth password / refresh_token / client_credentials
grants through ``/oauth_token.do`` with refresh before expiry and one re-auth
on 401, API key in ``x-sn-apikey``, bearer token, mutual TLS), retries 429
(honouring ``Retry-After``), 502/503/504 and connection errors with the
collection's bounded, jittered backoff, and speaks the Table API
(``/{api_path}/table/{table}``, ``api_path`` ``api/now`` by default: ``sysparm_query``, ``sysparm_fields``,
``sysparm_display_value``, ``sysparm_exclude_reference_link``,
``sysparm_limit``/``sysparm_offset`` following ``Link: rel="next"`` and
``X-Total-Count``) and the Change Management API (``/api/sn_chg_rest/change``).

Creates (POST) are not retried after an ambiguous failure (the request may
have been applied): the client raises ITSMAmbiguousWrite and the backend looks
the record up by correlation id or identity before trying again.
"""

from __future__ import annotations

import random
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

try:
    import requests

    REQUESTS_IMPORT_ERROR: Optional[ImportError] = None
except ImportError as exc:  # reported when a ServiceNow backend is opened, not when the local one is used
    REQUESTS_IMPORT_ERROR = exc

from ansible_collections.relops.release.plugins.plugin_utils.backoff import Backoff

from .errors import ITSMAmbiguousWrite, ITSMAuthError, ITSMError, ITSMNotFound, ITSMUnreachable
from .instance import InstanceConfig

RETRY_STATUSES = (429, 502, 503, 504)
# Refresh an OAuth token this many seconds before the instance says it expires.
TOKEN_REFRESH_MARGIN = 60.0
DEFAULT_PAGE_SIZE = 1000
CHANGE_API = "/api/sn_chg_rest/change"


class ServiceNowClient:
    """A session against one instance; ``requests_sent`` counts every HTTP request made."""

    def __init__(
        self,
        config: InstanceConfig,
        session: Optional[requests.Session] = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Optional[random.Random] = None,
    ) -> None:
        if REQUESTS_IMPORT_ERROR is not None:
            raise ITSMError(
                "the servicenow backend needs the Python library requests on the controller (%s); "
                "install it with pip install requests, or use backend: local" % REQUESTS_IMPORT_ERROR
            )
        self.config = config
        self.session = session or requests.Session()
        self.requests_sent = 0
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._token: Optional[str] = config.access_token
        self._token_expires: Optional[float] = None
        self._refresh_token: Optional[str] = config.refresh_token
        self.backoff = Backoff(timeout=config.max_retry_time, initial=0.25, factor=2.0, maximum=8.0, jitter=0.25)
        self._configure_session()

    def _configure_session(self) -> None:
        cfg = self.config
        self.session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        self.session.headers.update(cfg.custom_headers)
        # Passed with every request as well: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify: Any = cfg.ca_path if (cfg.validate_certs and cfg.ca_path) else cfg.validate_certs
        self.session.verify = self.verify
        if cfg.client_certificate_file:
            self.session.cert = (cfg.client_certificate_file, cfg.client_key_file or cfg.client_certificate_file)
        if cfg.proxy:
            self.session.proxies.update({"http": cfg.proxy, "https": cfg.proxy})
        # A configured proxy wins; otherwise requests honours HTTPS_PROXY / NO_PROXY.
        method = cfg.auth_method()
        if method == "basic":
            self.session.auth = (cfg.username or "", cfg.password or "")
        elif method == "api_key":
            self.session.headers["x-sn-apikey"] = cfg.api_key or ""

    # Authentication

    def _needs_token(self) -> bool:
        return self.config.auth_method().startswith("oauth") or self.config.auth_method() == "bearer"

    def _ensure_token(self, force: bool = False) -> None:
        if not self._needs_token():
            return
        if self.config.auth_method() == "bearer" and not force:
            self.session.headers["Authorization"] = "Bearer %s" % self._token
            return
        fresh = self._token and (self._token_expires is None or self._clock() < self._token_expires)
        if fresh and not force:
            self.session.headers["Authorization"] = "Bearer %s" % self._token
            return
        if self.config.auth_method() == "bearer":
            raise self._auth_error(401, "the access token was refused")
        self._fetch_token()

    def _fetch_token(self) -> None:
        cfg = self.config
        grant = cfg.effective_grant_type()
        form: Dict[str, str] = {
            "grant_type": grant,
            "client_id": cfg.client_id or "",
            "client_secret": cfg.client_secret or "",
        }
        if self._refresh_token and (grant == "refresh_token" or self._token):
            form.update(grant_type="refresh_token", refresh_token=self._refresh_token)
        elif grant == "password":
            form.update(username=cfg.username or "", password=cfg.password or "")
        response = self._send_with_retries(
            "POST",
            cfg.base_url + "/oauth_token.do",
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            auth=False,
        )
        if response.status_code != 200 and form["grant_type"] == "refresh_token" and grant == "password":
            # The refresh token itself expired: start over with the password grant.
            self._refresh_token = None
            self._token = None
            self._fetch_token()
            return
        if response.status_code != 200:
            raise self._auth_error(response.status_code, _error_text(response))
        body = response.json()
        self._token = str(body["access_token"])
        self._refresh_token = body.get("refresh_token") or self._refresh_token
        expires_in = float(body.get("expires_in") or 1800)
        self._token_expires = self._clock() + max(0.0, expires_in - TOKEN_REFRESH_MARGIN)
        self.session.headers["Authorization"] = "Bearer %s" % self._token

    def _auth_error(self, status: int, detail: str) -> ITSMAuthError:
        cfg = self.config
        sources = ", ".join(cfg.env_used) if cfg.env_used else "task options only"
        return ITSMAuthError(
            "ServiceNow %s refused %s authentication (HTTP %d: %s); credentials came from %s. "
            "Check the username/password, client_id/client_secret, token or API key for this instance"
            % (cfg.host, cfg.auth_method(), status, detail, sources)
        )

    # Transport

    def request(
        self,
        method: str,
        path: str,
        params: Optional[Mapping[str, Any]] = None,
        body: Optional[Mapping[str, Any]] = None,
        allow_missing: bool = False,
    ) -> Optional[requests.Response]:
        """Send one API request (retried when safe); return the response, or None on 404 with allow_missing."""
        self._ensure_token()
        url = path if path.startswith("http") else self.config.base_url + path
        response = self._send_with_retries(method, url, params=params, json=body)
        if response.status_code == 401 and self.config.auth_method() != "basic" and self._needs_token():
            # The token may have been revoked or expired early: re-authenticate once.
            self._ensure_token(force=True)
            response = self._send_with_retries(method, url, params=params, json=body)
        if response.status_code == 401:
            raise self._auth_error(401, _error_text(response))
        if response.status_code == 404 and allow_missing:
            return None
        if response.status_code >= 400:
            raise self._http_error(method, url, response)
        return response

    def _send_with_retries(self, method: str, url: str, auth: bool = True, **kwargs: Any) -> requests.Response:
        started = self._clock()
        attempt = 0
        delay = self.backoff.initial
        while True:
            attempt += 1
            last_error: Optional[str] = None
            response: Optional[requests.Response] = None
            try:
                self.requests_sent += 1
                response = self.session.request(method, url, timeout=self.config.timeout, verify=self.verify, **kwargs)
            except requests.exceptions.SSLError as exc:
                raise ITSMUnreachable(
                    "TLS with %s failed (%s); set instance.ca_path to the CA bundle, or fix the client certificate"
                    % (self.config.host, _short(exc))
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                last_error = _short(exc)
                if method == "POST" and not _never_sent(exc) and auth:
                    raise ITSMAmbiguousWrite("%s %s: %s" % (method, url, last_error)) from None
            if response is not None and response.status_code not in RETRY_STATUSES:
                return response
            if response is not None and method == "POST" and response.status_code in (502, 504) and auth:
                raise ITSMAmbiguousWrite("%s %s: HTTP %d" % (method, url, response.status_code))
            pause = self._next_pause(delay, response)
            elapsed = self._clock() - started
            if attempt > self.config.max_retries or elapsed + pause > self.config.max_retry_time:
                if response is not None:
                    return response
                raise ITSMUnreachable(
                    "ServiceNow %s is unreachable after %d attempts in %.1fs (%s); check instance.host, the network "
                    "and proxy, or raise instance.max_retries / max_retry_time"
                    % (self.config.host, attempt, elapsed, last_error)
                )
            self._sleep(pause)
            delay = min(delay * self.backoff.factor, self.backoff.maximum)

    def _next_pause(self, delay: float, response: Optional[requests.Response]) -> float:
        spread = delay * self.backoff.jitter
        pause = max(0.0, delay + self._rng.uniform(-spread, spread))
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after:
            try:
                pause = max(pause, float(retry_after))
            except ValueError:
                pass
        return pause

    def _http_error(self, method: str, url: str, response: requests.Response) -> ITSMError:
        text = _error_text(response)
        if response.status_code == 404:
            return ITSMNotFound("%s %s: %s" % (method, url.replace(self.config.base_url, ""), text))
        return ITSMError(
            "ServiceNow %s %s failed with HTTP %d: %s"
            % (method, url.replace(self.config.base_url, ""), response.status_code, text)
        )

    # Table API

    def table_url(self, table: str, sys_id: Optional[str] = None) -> str:
        return self.config.api_root + "/table/" + table + ("/" + sys_id if sys_id else "")

    def iter_records(
        self,
        table: str,
        query: str = "",
        fields: Optional[Sequence[str]] = None,
        display_value: str = "false",
        page_size: int = DEFAULT_PAGE_SIZE,
        limit: Optional[int] = None,
    ) -> Iterator[Dict[str, Any]]:
        """Yield a table's records matching an encoded query, page by page, following Link rel=next."""
        params: Dict[str, Any] = {
            "sysparm_query": query,
            "sysparm_display_value": display_value,
            "sysparm_exclude_reference_link": "true",
            "sysparm_limit": min(page_size, limit) if limit else page_size,
            "sysparm_offset": 0,
        }
        if fields:
            params["sysparm_fields"] = ",".join(fields)
        url: Optional[str] = self.table_url(table)
        seen = 0
        while url:
            response = self.request("GET", url, params=params)
            if response is None:
                return
            records = response.json().get("result", [])
            for record in records:
                yield record
                seen += 1
                if limit and seen >= limit:
                    return
            url = response.links.get("next", {}).get("url")
            # The next link carries every parameter already.
            params = {}
            if not records:
                return

    def list_records(self, table: str, query: str = "", **kwargs: Any) -> List[Dict[str, Any]]:
        return list(self.iter_records(table, query, **kwargs))

    def count_records(self, table: str, query: str = "") -> int:
        """Return X-Total-Count for a query, asking for a single record."""
        params = {"sysparm_query": query, "sysparm_limit": 1, "sysparm_fields": "sys_id"}
        response = self.request("GET", self.table_url(table), params=params)
        return int(response.headers.get("X-Total-Count", "0")) if response is not None else 0

    def get_record(self, table: str, sys_id: str, fields: Optional[Sequence[str]] = None) -> Optional[Dict[str, Any]]:
        params: Dict[str, Any] = {"sysparm_exclude_reference_link": "true"}
        if fields:
            params["sysparm_fields"] = ",".join(fields)
        response = self.request("GET", self.table_url(table, sys_id), params=params, allow_missing=True)
        return response.json()["result"] if response is not None else None

    def create_record(self, table: str, values: Mapping[str, Any]) -> Dict[str, Any]:
        response = self.request(
            "POST", self.table_url(table), params={"sysparm_exclude_reference_link": "true"}, body=values
        )
        return dict(_result(response))

    def update_record(self, table: str, sys_id: str, values: Mapping[str, Any]) -> Dict[str, Any]:
        response = self.request(
            "PATCH", self.table_url(table, sys_id), params={"sysparm_exclude_reference_link": "true"}, body=values
        )
        return dict(_result(response))

    def delete_record(self, table: str, sys_id: str) -> None:
        self.request("DELETE", self.table_url(table, sys_id), allow_missing=True)

    # Change Management API

    def change_api_available(self) -> bool:
        """Whether the instance has the Change Management API plugin (``sn_chg_rest``) active."""
        try:
            response = self.request("GET", CHANGE_API, params={"sysparm_limit": 1}, allow_missing=True)
        except ITSMError as exc:
            # An instance without the plugin answers 400 "Requested URI does not represent any resource".
            if "does not represent any resource" in str(exc):
                return False
            raise
        return response is not None

    def change_api(
        self,
        method: str,
        suffix: str,
        body: Optional[Mapping[str, Any]] = None,
        params: Optional[Mapping[str, Any]] = None,
    ) -> Any:
        response = self.request(method, CHANGE_API + suffix, params=params, body=body)
        return flatten_change_api(_result(response))


def flatten_change_api(result: Any) -> Any:
    """The Change Management API returns each field as {value, display_value}; keep the values."""
    if isinstance(result, list):
        return [flatten_change_api(item) for item in result]
    if not isinstance(result, dict):
        return result
    flat: Dict[str, Any] = {}
    for key, value in result.items():
        if isinstance(value, dict) and "value" in value and "display_value" in value:
            flat[key] = value["value"]
        else:
            flat[key] = value
    return flat


def _result(response: Optional[requests.Response]) -> Any:
    if response is None:
        raise ITSMNotFound("the instance answered 404 for a record it just named")
    if response.status_code == 204 or not response.content:
        return {}
    return response.json().get("result", {})


def _error_text(response: requests.Response) -> str:
    """Return ServiceNow's {"error": {"message", "detail"}, "status": "failure"} as one line."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        # The OAuth endpoint answers {"error": ..., "error_description": ...} (RFC 6749 section 5.2).
        return "%s (%s)" % (error, body.get("error_description")) if body.get("error_description") else error
    error = error or {}
    message = str(error.get("message") or response.reason or "")
    detail = error.get("detail")
    return "%s (%s)" % (message, detail) if detail else message


def _never_sent(exc: Exception) -> bool:
    """Connection refused / DNS failures happen before the request reaches the instance."""
    return (
        isinstance(exc, requests.exceptions.ConnectTimeout)
        or "Connection refused" in str(exc)
        or "NameResolution" in str(exc)
    )


def _short(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 error, which wraps it in retry and pool errors."""
    inner: BaseException = exc
    for _depth in range(5):
        nested = getattr(inner, "reason", None)
        if not isinstance(nested, BaseException) and inner.args and isinstance(inner.args[0], BaseException):
            nested = inner.args[0]
        if not isinstance(nested, BaseException):
            break
        inner = nested
    text = str(inner)
    return text if len(text) < 300 else text[:300] + "..."
