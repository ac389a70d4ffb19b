"""The relops.release.canary role through real ansible-playbook runs: real nginx and HAProxy in front
of two slots run by supervisord, the analysis from probes or a real Prometheus, the ledger on SQLite."""

from __future__ import annotations

import re

import pytest
from fixtures.canary import CanarySite

from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url


def recap_changed(output: str) -> int:
    match = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", output)
    assert match, output
    return int(match.group(1))


def deployments(site: CanarySite) -> list[tuple[str, str]]:
    with open_ledger(parse_ledger_url(site.ledger_url)) as ledger:
        return [(row["version"], row["status"]) for row in ledger.list_deployments("demo-app", "staging")]


def analysis_decisions(site: CanarySite, version: str) -> list[tuple[str, str]]:
    with open_ledger(parse_ledger_url(site.ledger_url)) as ledger:
        rows = ledger.list_decisions(limit=50)
    prefix = "demo-app %s staging canary " % version
    return sorted(
        ((row["subject"][len(prefix) :], row["decision"]) for row in rows if row["subject"].startswith(prefix)),
        key=lambda item: int(item[0].rstrip("%")),
    )


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_healthy_canary_is_promoted_through_every_step(canary_site, kind: str) -> None:
    site = canary_site(kind)
    assert site.versions_through_router() == {"1.0.0": 20}
    site.package("1.1.0")
    run = site.run("1.1.0")
    assert run.returncode == 0, run.output
    assert analysis_decisions(site, "1.1.0") == [("5%", "allow"), ("25%", "allow"), ("50%", "allow"), ("100%", "allow")]
    assert site.versions_through_router() == {"1.1.0": 20}
    assert deployments(site) == [("1.1.0", "successful")]
    # Promotion: the canary slot is the stable one now, the previous stable is stopped.
    assert site.listening("green") and not site.listening("blue")
    again = site.run("1.1.0")
    assert again.returncode == 0 and recap_changed(again.output) == 0, again.output
    assert deployments(site) == [("1.1.0", "successful")]
