"""The ServiceNow client against the stand-in: auth, retries, pagination, queries, ambiguous writes."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import yaml
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.doc_fragments.itsm import ModuleDocFragment
from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import (
    ITSMAmbiguousWrite,
    ITSMAuthError,
    ITSMError,
    ITSMUnreachable,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import (
    ENV_FALLBACKS,
    INSTANCE_ARGUMENT_SPEC,
    resolve_backend,
    resolve_instance,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.query import Query
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow import ServiceNowClient


class FakeClock:
    """Sleeps advance a fake clock, so retry tests run instantly and record their pauses."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _client(standin: ServiceNowStandIn, clock: FakeClock | None = None, **options: Any) -> ServiceNowClient:
    settings = {"host": standin.url, "username": "admin", "password": "admin-secret", **options}
    fake = clock or FakeClock()
    return ServiceNowClient(resolve_instance(settings, {}), sleep=fake.sleep, clock=fake.clock)


def test_query_builder_escapes_carets_and_refuses_unescapable_values() -> None:
    query = Query().equals("name", "a^b").or_equals("name", "c").is_in("state", ["-1", "0"]).order_by("number", True)
    assert str(query) == "name=a^^b^ORname=c^stateIN-1,0^ORDERBYDESCnumber"
    with pytest.raises(ITSMError, match="holds a comma"):
        Query().is_in("name", ["a,b"])
    with pytest.raises(ITSMError, match="not a ServiceNow column name"):
        Query().equals("name^ORsys_id", "x")


def test_escaped_values_match_exactly_on_the_instance(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow)
    client.create_record("cmdb_ci_appl", {"name": "odd^name"})
    client.create_record("cmdb_ci_appl", {"name": "odd"})
    found = client.list_records("cmdb_ci_appl", str(Query().equals("name", "odd^name")))
    assert [r["name"] for r in found] == ["odd^name"]
    empty = client.list_records("cmdb_ci_appl", str(Query().is_empty("version").starts_with("name", "odd")))
    assert len(empty) == 2


def test_pagination_follows_link_headers_and_fields_are_limited(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow)
    for index in range(23):
        servicenow.insert("cmdb_ci_linux_server", {"name": "web%02d" % index, "serial_number": "S%d" % index})
    records = client.list_records(
        "cmdb_ci", str(Query().starts_with("name", "web").order_by("name")), fields=["name"], page_size=10
    )
    assert [r["name"] for r in records] == ["web%02d" % i for i in range(23)]
    assert all(set(r) == {"name"} for r in records)
    assert client.requests_sent == 3
    assert client.count_records("cmdb_ci_server", "nameLIKEweb1") == 10


def test_429_is_retried_after_retry_after(servicenow: ServiceNowStandIn) -> None:
    clock = FakeClock()
    client = _client(servicenow, clock)
    servicenow.instance.faults.retry_after = 3.0
    servicenow.instance.faults.queue = ["429", "503", "reset"]
    assert client.list_records("sys_user", "user_name=admin")[0]["user_name"] == "admin"
    assert client.requests_sent == 4
    assert clock.pauses[0] >= 3.0, "Retry-After must be honoured"
    assert len(clock.pauses) == 3 and clock.pauses[1] < 3.0


def test_retries_are_bounded_in_count(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow, max_retries=2)
    servicenow.instance.faults.queue = ["503"] * 5
    with pytest.raises(ITSMError, match="HTTP 503"):
        client.list_records("sys_user", "")
    assert client.requests_sent == 3


def test_retries_are_bounded_in_time(servicenow: ServiceNowStandIn) -> None:
    clock = FakeClock()
    client = _client(servicenow, clock, max_retries=50, max_retry_time=5.0)
    servicenow.instance.faults.retry_after = 2.0
    servicenow.instance.faults.queue = ["429"] * 50
    with pytest.raises(ITSMError, match="HTTP 429"):
        client.list_records("sys_user", "")
    assert clock.now <= 5.0 and client.requests_sent < 5


def test_500_is_not_retried(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow)
    servicenow.instance.faults.queue = ["500"]
    with pytest.raises(ITSMError, match="HTTP 500: Service Unavailable"):
        client.list_records("sys_user", "")
    assert client.requests_sent == 1


def test_a_create_dropped_after_commit_is_reported_as_ambiguous(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow)
    servicenow.instance.faults.queue = ["reset_after"]
    with pytest.raises(ITSMAmbiguousWrite):
        client.create_record("cmdb_ci_appl", {"name": "maybe"})
    assert len(servicenow.records("cmdb_ci_appl", "name=maybe")) == 1


def test_a_slow_answer_past_the_timeout_is_retried_for_reads(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow, timeout=0.3)
    servicenow.instance.faults.slow_seconds = 1.0
    servicenow.instance.faults.queue = ["slow"]
    assert client.list_records("sys_user", "user_name=admin")
    assert client.requests_sent == 2


def test_unreachable_instance_names_host_and_attempts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeClock()
    config = resolve_instance(
        {"host": "http://127.0.0.1:%d" % port, "username": "u", "password": "p", "max_retries": 2}, {}
    )
    client = ServiceNowClient(config, sleep=clock.sleep, clock=clock.clock)
    with pytest.raises(ITSMUnreachable, match=r"127\.0\.0\.1:%d is unreachable after 3 attempts" % port):
        client.list_records("sys_user", "")


def test_wrong_basic_credentials_name_the_method_and_env_vars_never_the_secret(servicenow: ServiceNowStandIn) -> None:
    env = {"SN_HOST": servicenow.url, "SN_USERNAME": "admin", "SN_PASSWORD": "wrong-horse-battery"}
    client = ServiceNowClient(resolve_instance(None, env))
    with pytest.raises(ITSMAuthError) as failure:
        client.list_records("sys_user", "")
    message = str(failure.value)
    assert "basic authentication" in message and "SN_HOST, SN_USERNAME, SN_PASSWORD" in message
    assert "wrong-horse-battery" not in message and "User Not Authenticated" in message


def test_oauth_password_grant_refreshes_before_expiry(servicenow: ServiceNowStandIn) -> None:
    clock = FakeClock()
    client = _client(servicenow, clock, client_id="relops", client_secret="client-secret")
    client.list_records("sys_user", "")
    first = dict(servicenow.instance.tokens)
    clock.now += 1800 - 30  # inside the refresh margin
    client.list_records("sys_user", "")
    assert len(servicenow.instance.tokens) == 2 and set(first) < set(servicenow.instance.tokens)
    token_posts = [path for method, path in servicenow.instance.requests if path == "/oauth_token.do"]
    assert len(token_posts) == 2


def test_oauth_refreshes_with_the_refresh_token_then_falls_back_to_the_password_grant(
    servicenow: ServiceNowStandIn,
) -> None:
    clock = FakeClock()
    client = _client(servicenow, clock, client_id="relops", client_secret="client-secret")
    client.list_records("sys_user", "")
    clock.now += 1800  # the access token expired: the refresh token the instance issued renews it
    client.list_records("sys_user", "")
    assert servicenow.instance.oauth_grants == ["password", "refresh_token"]
    servicenow.instance.refresh_tokens.clear()  # the refresh token expired too, or was revoked
    clock.now += 1800
    assert client.list_records("sys_user", "user_name=admin")[0]["user_name"] == "admin"
    assert servicenow.instance.oauth_grants == ["password", "refresh_token", "refresh_token", "password"]
    assert [p for _m, p in servicenow.instance.requests].count("/oauth_token.do") == 4


def test_oauth_refresh_token_grant_alone_fails_when_the_token_is_refused(servicenow: ServiceNowStandIn) -> None:
    """Without a password there is nothing to fall back to: the refusal names the grant and variables."""
    env = {
        "SN_HOST": servicenow.url,
        "SN_CLIENT_ID": "relops",
        "SN_CLIENT_SECRET": "client-secret",
        "SN_REFRESH_TOKEN": "revoked-token",
    }
    with pytest.raises(ITSMAuthError, match="oauth refresh_token authentication") as failure:
        ServiceNowClient(resolve_instance(None, env)).list_records("sys_user", "")
    assert "SN_REFRESH_TOKEN" in str(failure.value) and "revoked-token" not in str(failure.value)
    assert servicenow.instance.oauth_grants == ["refresh_token"]


def test_oauth_reauthenticates_once_on_401(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow, client_id="relops", client_secret="client-secret", grant_type="client_credentials")
    client.list_records("sys_user", "")
    servicenow.instance.tokens.clear()  # the instance revoked every token
    assert client.list_records("sys_user", "user_name=admin")
    assert [p for _m, p in servicenow.instance.requests].count("/oauth_token.do") == 2


def test_oauth_refresh_token_grant_and_wrong_client_secret(servicenow: ServiceNowStandIn) -> None:
    servicenow.instance.refresh_tokens["r-123"] = "admin"
    env = {
        "SN_HOST": servicenow.url,
        "SN_CLIENT_ID": "relops",
        "SN_CLIENT_SECRET": "client-secret",
        "SN_REFRESH_TOKEN": "r-123",
    }
    config = resolve_instance(None, env)
    assert config.auth_method() == "oauth refresh_token"
    assert ServiceNowClient(config).list_records("sys_user", "user_name=admin")
    bad = resolve_instance(None, dict(env, SN_CLIENT_SECRET="nope", SN_GRANT_TYPE="client_credentials"))
    with pytest.raises(ITSMAuthError, match="oauth client_credentials authentication") as failure:
        ServiceNowClient(bad).list_records("sys_user", "")
    assert "nope" not in str(failure.value) and "SN_CLIENT_SECRET" in str(failure.value)


def test_api_key_and_bearer_token(servicenow: ServiceNowStandIn) -> None:
    servicenow.instance.api_keys["k-1"] = "admin"
    keyed = ServiceNowClient(resolve_instance({"host": servicenow.url, "api_key": "k-1"}, {}))
    assert keyed.list_records("sys_user", "user_name=admin")
    servicenow.instance.tokens["t-1"] = ("admin", 4102444800.0)
    bearer = ServiceNowClient(resolve_instance({"host": servicenow.url, "access_token": "t-1"}, {}))
    assert bearer.config.auth_method() == "bearer" and bearer.list_records("sys_user", "user_name=admin")
    refused = ServiceNowClient(resolve_instance({"host": servicenow.url, "access_token": "expired"}, {}))
    with pytest.raises(ITSMAuthError, match="bearer authentication"):
        refused.list_records("sys_user", "")


def test_instance_options_and_backend_selection() -> None:
    assert resolve_backend(None, None, {}) == "local"
    assert resolve_backend(None, None, {"SN_HOST": "x"}) == "servicenow"
    assert resolve_backend("local", {"host": "x"}, {}) == "local"
    config = resolve_instance(
        {"host": "example.service-now.com", "username": "u"}, {"SN_PASSWORD": "p", "SN_TIMEOUT": "7"}
    )
    assert config.base_url == "https://example.service-now.com" and config.timeout == 7.0
    assert config.env_used == ["SN_PASSWORD", "SN_TIMEOUT"] and config.validate_certs is True
    with pytest.raises(ITSMError, match="needs a host"):
        resolve_instance({}, {})
    with pytest.raises(ITSMError, match="client_id is set without client_secret"):
        resolve_instance({"host": "h", "client_id": "c"}, {})
    with pytest.raises(ITSMError, match="SN_GRANT_TYPE"):
        resolve_instance({"host": "h", "username": "u"}, {"SN_GRANT_TYPE": "implicit"})


def test_every_sn_variable_is_a_fallback_and_the_task_wins() -> None:
    env = {
        "SN_HOST": "env.service-now.com",
        "SN_USERNAME": "env-user",
        "SN_PASSWORD": "env-pass",
        "SN_CLIENT_ID": "env-client",
        "SN_CLIENT_SECRET": "env-secret",
        "SN_REFRESH_TOKEN": "env-refresh",
        "SN_GRANT_TYPE": "refresh_token",
        "SN_ACCESS_TOKEN": "env-token",
        "SN_API_KEY": "env-key",
        "SN_TIMEOUT": "12.5",
        "SN_CLIENT_CERTIFICATE_FILE": "/etc/relops/client.pem",
        "SN_CLIENT_KEY_FILE": "/etc/relops/client.key",
    }
    config = resolve_instance(None, env)
    assert (config.client_certificate_file, config.client_key_file) == (
        "/etc/relops/client.pem",
        "/etc/relops/client.key",
    )
    assert (config.host, config.username, config.password) == ("env.service-now.com", "env-user", "env-pass")
    assert (config.client_id, config.client_secret, config.refresh_token) == ("env-client", "env-secret", "env-refresh")
    assert (config.grant_type, config.access_token, config.api_key) == ("refresh_token", "env-token", "env-key")
    assert config.timeout == 12.5 and sorted(config.env_used) == sorted(env)
    assert config.auth_method() == "api_key", "an API key wins, as the documented order says"
    mine = resolve_instance({"host": "task.example", "api_key": "task-key", "timeout": 3}, env)
    assert (mine.host, mine.api_key, mine.timeout) == ("task.example", "task-key", 3.0)
    assert "SN_HOST" not in mine.env_used and "SN_API_KEY" not in mine.env_used
    bearer = resolve_instance(None, {k: v for k, v in env.items() if k != "SN_API_KEY"})
    assert bearer.auth_method() == "bearer"


def test_api_path_moves_the_table_api_like_servicenow_itsm(servicenow: ServiceNowStandIn) -> None:
    assert resolve_instance({"host": "h", "username": "u"}, {}).api_root == "/api/now"
    servicenow.instance.api_roots.append("/api/x_acme_proxy/v1")
    config = resolve_instance(
        {"host": servicenow.url, "username": "admin", "password": "admin-secret", "api_path": "/api/x_acme_proxy/v1/"},
        {},
    )
    client = ServiceNowClient(config)
    assert client.list_records("sys_user", "user_name=admin")[0]["user_name"] == "admin"
    assert servicenow.instance.requests[-1] == ("GET", "/api/x_acme_proxy/v1/table/sys_user")
    with pytest.raises(ITSMError, match="api_path 'api/now\\?x' is not a URL path"):
        resolve_instance({"host": "h", "username": "u", "api_path": "api/now?x"}, {})


# servicenow.itsm's instance options and their environment variables (its module_utils/instance_config.py,
# INSTANCE_OPTIONS); None: no environment fallback there either.
SERVICENOW_ITSM_INSTANCE = {
    "host": "SN_HOST",
    "username": "SN_USERNAME",
    "password": "SN_PASSWORD",
    "grant_type": "SN_GRANT_TYPE",
    "api_path": None,
    "client_id": "SN_CLIENT_ID",
    "client_secret": "SN_CLIENT_SECRET",
    "client_certificate_file": "SN_CLIENT_CERTIFICATE_FILE",
    "client_key_file": "SN_CLIENT_KEY_FILE",
    "custom_headers": None,
    "refresh_token": "SN_REFRESH_TOKEN",
    "access_token": "SN_ACCESS_TOKEN",
    "api_key": "SN_API_KEY",
    "timeout": "SN_TIMEOUT",
    "validate_certs": None,
}


def test_instance_options_are_a_superset_of_servicenow_itsm_and_documented() -> None:
    options = INSTANCE_ARGUMENT_SPEC["instance"]["options"]
    for name, variable in SERVICENOW_ITSM_INSTANCE.items():
        assert name in options, "servicenow.itsm's instance.%s is missing" % name
        assert ENV_FALLBACKS.get(name) == variable, name
    assert options["api_path"]["default"] == "api/now"
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["instance"]["suboptions"]
    assert sorted(documented) == sorted(options)
    for name, spec in options.items():
        assert documented[name]["type"] == spec["type"], name
        assert documented[name].get("default") == spec.get("default"), name
        if ENV_FALLBACKS.get(name):
            assert "E(%s)" % ENV_FALLBACKS[name] in str(documented[name]["description"]), name


def test_table_errors_carry_the_servicenow_message(servicenow: ServiceNowStandIn) -> None:
    client = _client(servicenow)
    with pytest.raises(ITSMError, match="Invalid table cmdb_ci_toaster"):
        client.list_records("cmdb_ci_toaster", "")
    assert client.get_record("cmdb_ci", "0" * 32) is None


def test_credentials_in_instance_host_leave_the_host_and_become_basic_auth() -> None:
    config = resolve_instance({"host": "https://admin:p%40ss@example.service-now.com/"}, environ={})
    assert config.host == "https://example.service-now.com/" and config.base_url == "https://example.service-now.com"
    assert (config.username, config.password, config.auth_method()) == ("admin", "p@ss", "basic")
    given = resolve_instance({"host": "admin:in-url@example.com", "username": "u", "password": "given"}, environ={})
    assert (given.host, given.username, given.password) == ("example.com", "u", "given"), "the task's options win"
    assert resolve_instance({"host": "https://example.com/a@b", "api_key": "k"}, environ={}).host == (
        "https://example.com/a@b"
    ), "an @ after the host is a path, not credentials"
