"""The governed release flow with the canary strategy (release_strategy: canary) on the local inventory:
the canary role takes the idle slot of the demo site, moves traffic through nginx in steps (25, 50, 100 %,
inventories/local/group_vars/all.yml) and analyses each step with its probe statistics.

The tests share one site and run in file order: 1.0.0 blue-green; 1.1.0 as a canary, promoted; a build
answering half its requests with 500, aborted by the canary itself; 1.2.0, promoted as a canary and then
failing its smoke tests, rolled back like a blue-green release.
"""

from __future__ import annotations

from typing import Any

import pytest
from fixtures.demo_site import Site

pytestmark = pytest.mark.xdist_group("release_canary")

CANARY = ("-e", "release_strategy=canary")


def last_summary(site: Site) -> dict[str, Any]:
    with site.ledger() as ledger:
        summary: dict[str, Any] = ledger.list_runs(limit=1)[0]["summary"]
    return summary


def change_of(site: Site, number: str) -> dict[str, Any]:
    with site.ledger() as ledger:
        change: dict[str, Any] = ledger.itsm_get_change(number=number)
    return {**(change.get("fields") or {}), **change}


def deployments(site: Site) -> list[tuple[str, str, str]]:
    with site.ledger() as ledger:
        return [(d["version"], d["status"], d["strategy"]) for d in ledger.list_deployments("demo-app", "local")]


def versions_served(site: Site, count: int = 20) -> set[str]:
    return {str(site.get("/")[1]["version"]) for _request in range(count)}


def test_the_first_release_is_blue_green(demo_site: Site) -> None:
    run = demo_site.release("1.0.0")
    assert run.returncode == 0, run.report
    assert versions_served(demo_site) == {"1.0.0"}


def test_a_healthy_canary_is_promoted_through_every_step(demo_site: Site) -> None:
    site = demo_site
    run = site.release("1.1.0", *CANARY)
    assert run.returncode == 0, run.report
    for step in (25, 50, 100):
        assert "Route traffic to the canary, percent %d" % step in run.output, run.report
    summary = last_summary(site)
    assert summary["strategy"] == "canary" and summary["outcome"] == "successful", summary
    assert versions_served(site) == {"1.1.0"}
    assert site.get("/api/items")[0] == 200 and site.schema_version() == "2"
    change = change_of(site, summary["change"])
    assert change["state"] == "closed" and change["close_code"] == "successful"
    assert deployments(site)[0] == ("1.1.0", "successful", "canary")
    with site.ledger() as ledger:
        steps = [d for d in ledger.list_decisions(limit=50) if d["subject"].startswith("demo-app 1.1.0 local canary ")]
        assert sorted(d["subject"].rsplit(" ", 1)[1] for d in steps) == ["100%", "25%", "50%"], steps
        assert {d["decision"] for d in steps} == {"allow"}, steps
        assert ledger.get_lock("demo-app") is None


def test_a_failing_canary_aborts_itself_and_the_release_fails(demo_site: Site) -> None:
    site = demo_site

    package = site.build_faulty_variant("1.1.0", "1.1.1", error_ratio=0.5)
    run = site.release("1.1.1", *CANARY, package=package)
    assert run.returncode != 0
    assert "aborted at 25%" in run.output, run.report
    summary = last_summary(site)
    assert summary["failed_stage"] == "deploy", summary
    assert summary["application"] == "the canary aborted itself; the stable version serves all traffic", summary
    assert versions_served(site, 40) == {"1.1.0"}
    assert site.schema_version() == "2"
    change = change_of(site, summary["change"])
    assert change["state"] == "closed" and change["close_code"] == "unsuccessful"
    statuses = deployments(site)
    assert statuses[0][0] == "1.1.1" and statuses[0][1] in ("failed", "rolled_back"), statuses
    assert ("1.1.0", "successful", "canary") in statuses
    with site.ledger() as ledger:
        incidents = ledger.list_incidents(service="demo-app")
        assert [i["details"]["version"] for i in incidents] == ["1.1.1"], incidents
        assert ledger.get_lock("demo-app") is None


def test_a_promoted_canary_that_fails_its_smoke_tests_is_rolled_back(demo_site: Site) -> None:
    site = demo_site
    run = site.release("1.2.0", *CANARY)
    assert run.returncode != 0
    assert "items API answers" in run.output and "Route traffic to the canary, percent 100" in run.output, run.report
    summary = last_summary(site)
    assert summary["failed_stage"] == "smoke", summary
    assert summary["application"] == "rolled back to 1.1.0", summary
    assert summary["schema"] == "schema 3 -> 2", summary
    assert versions_served(site) == {"1.1.0"}
    assert site.get("/api/items")[0] == 200 and site.schema_version() == "2"
    assert ("1.2.0", "rolled_back", "canary") in deployments(site)
    change = change_of(site, summary["change"])
    assert change["state"] == "closed" and change["close_code"] == "unsuccessful"
