"""The ServiceNow client through a real forwarding proxy (tinyproxy), via ansible-playbook: the
``instance.proxy`` option, the HTTP(S)_PROXY / NO_PROXY environment, and a proxy that is down."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from fixtures.http_proxy import HttpProxy
from fixtures.itsm_tasks import run_task
from fixtures.playbooks import Ansible
from fixtures.prometheus import free_port
from fixtures.servicenow import ItsmWorld
from servicenow.server import ServiceNowStandIn

UPSERT = {
    "backend": "servicenow",
    "ci_class": "cmdb_ci_linux_server",
    "name": "web01",
    "attributes": {"ip_address": "10.0.0.11"},
}


def _world(ansible: Ansible, standin: ServiceNowStandIn) -> ItsmWorld:
    return ItsmWorld("servicenow", "sqlite:///" + os.path.join(ansible.workdir, "l.db").lstrip("/"), standin)


def _proxied(proxy: HttpProxy, standin: ServiceNowStandIn) -> list[tuple[str, str]]:
    """The requests the proxy forwarded to the stand-in, as (method, path)."""
    return [
        (method, urlsplit(target).path) for method, target in proxy.requests() if target.startswith(standin.url + "/")
    ]


def test_every_request_goes_through_the_configured_proxy(
    ansible: Ansible, servicenow: ServiceNowStandIn, http_proxy: HttpProxy
) -> None:
    result = run_task(ansible, _world(ansible, servicenow), "cmdb_ci", dict(UPSERT, instance={"proxy": http_proxy.url}))
    assert result["changed"] is True and result["operation"] == "INSERT", result
    received = list(servicenow.instance.requests)
    assert ("POST", "/api/now/table/cmdb_ci_linux_server") in received
    assert _proxied(http_proxy, servicenow) == received, "the stand-in received only what the proxy forwarded"


def test_the_proxy_environment_is_honoured_and_no_proxy_bypasses_it(
    ansible: Ansible, servicenow: ServiceNowStandIn, http_proxy: HttpProxy
) -> None:
    world = _world(ansible, servicenow)
    through = run_task(ansible, world, "cmdb_ci_info", {"name": "web01"}, env={"HTTP_PROXY": http_proxy.url})
    assert through.get("failed") is not True, through
    assert _proxied(http_proxy, servicenow) == list(servicenow.instance.requests) != []
    forwarded = len(http_proxy.requests())
    direct = run_task(
        ansible,
        world,
        "cmdb_ci_info",
        {"name": "web01"},
        env={"HTTP_PROXY": http_proxy.url, "NO_PROXY": "127.0.0.1"},
    )
    assert direct.get("failed") is not True, direct
    assert len(http_proxy.requests()) == forwarded, "NO_PROXY must send requests to the instance directly"
    assert len(servicenow.instance.requests) > forwarded


def test_a_proxy_that_is_down_is_reported_as_unreachable(ansible: Ansible, servicenow: ServiceNowStandIn) -> None:
    dead = "http://127.0.0.1:%d" % free_port()
    result = run_task(
        ansible,
        _world(ansible, servicenow),
        "cmdb_ci",
        dict(UPSERT, instance={"proxy": dead, "max_retries": 1, "max_retry_time": 5}),
    )
    assert result["failed"] is True
    assert "unreachable after 2 attempts" in result["msg"] and "proxy" in result["msg"], result["msg"]
    assert servicenow.instance.requests == []
