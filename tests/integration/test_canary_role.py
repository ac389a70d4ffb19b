"""The relops.release.canary role through real ansible-playbook runs: real nginx and HAProxy in front
of two slots run by supervisord, the analysis from probes or a real Prometheus, the ledger on SQLite."""

from __future__ import annotations

import re

import pytest
from fixtures.canary import CanarySite, ScrapingPrometheus

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
    preview = site.run("1.1.0", "--check", "--diff")
    assert preview.returncode == 0, preview.report
    # Check mode shows the slot and the router changes, and changes nothing.
    assert "version: 1.1.0" in preview.output and "localhost-green" in preview.output, preview.report
    assert site.versions_through_router() == {"1.0.0": 20} and not site.listening("green")
    assert deployments(site) == []
    run = site.run("1.1.0")
    assert run.returncode == 0, run.report
    assert analysis_decisions(site, "1.1.0") == [("5%", "allow"), ("25%", "allow"), ("50%", "allow"), ("100%", "allow")]
    assert site.versions_through_router() == {"1.1.0": 20}
    assert deployments(site) == [("1.1.0", "successful")]
    # Promotion: the canary slot is the stable one now, the previous stable is stopped.
    assert site.listening("green") and not site.listening("blue")
    again = site.run("1.1.0")
    assert again.returncode == 0 and recap_changed(again.output) == 0, again.report
    assert deployments(site) == [("1.1.0", "successful")]


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_canary_returning_errors_is_aborted_at_the_first_analysis(canary_site, kind: str) -> None:
    site = canary_site(kind)
    site.package("1.2.0", error_ratio=0.5)
    run = site.run("1.2.0")
    assert run.returncode != 0
    assert "canary demo-app 1.2.0 aborted at 5%" in run.output and "error rate failed" in run.output, run.report
    assert analysis_decisions(site, "1.2.0") == [("5%", "deny")]
    # Traffic is back on the stable release, checked through the router itself.
    assert site.versions_through_router() == {"1.0.0": 20}
    assert deployments(site) == [("1.2.0", "rolled_back")]
    assert site.listening("blue") and not site.listening("green")


def ratio(track: str) -> str:
    return (
        'sum(rate(demo_requests_total{track="%s",code="500"}[5s])) / sum(rate(demo_requests_total{track="%s"}[5s]))'
        % (track, track)
    )


def track(site: CanarySite) -> str:
    """The canary slot's track label, unique to the site (the Prometheus outlives it)."""
    return "green-%d" % site.ports["green"]


def prometheus_analysis(prometheus: ScrapingPrometheus, site: CanarySite, no_data: str) -> dict:
    return {
        "prometheus_url": prometheus.url,
        "interval": 0.5,
        "count": 2,
        "no_data": no_data,
        "metrics": [{"name": "error ratio", "query": ratio(track(site)), "success_condition": "result < 0.01"}],
    }


def router_weights(site: CanarySite) -> dict[str, int]:
    """Each slot's share of traffic as the nginx upstream file gives it (a server marked down gets 0)."""
    with open(str(site.router.nginx_upstream_file), encoding="utf-8") as handle:
        lines = [line for line in handle if "# relops name=" in line]
    weights = {}
    for line in lines:
        server = line.partition("# relops name=")[0]
        slot = "blue" if ":%d" % site.ports["blue"] in server else "green"
        weight = int(re.search(r"weight=(\d+)", server).group(1))  # type: ignore[union-attr]
        weights[slot] = 0 if " down" in server else weight
    return weights


def scraped_without_traffic(prometheus: ScrapingPrometheus, site: CanarySite) -> bool:
    """The canary was scraped (its counters exist) and never requested."""
    seen = prometheus.query('max_over_time(up{track="%s"}[10m])' % track(site))
    requests = prometheus.query('sum(max_over_time(demo_requests_total{track="%s"}[10m]))' % track(site))
    return seen == [1.0] and requests == [0.0]


@pytest.fixture
def quiet_site(canary_site, scraping_prometheus: ScrapingPrometheus):
    """A site whose slots Prometheus scrapes (track = slot); nobody sends the canary traffic."""

    def start() -> CanarySite:
        site = canary_site("nginx")
        scraping_prometheus.scrape(
            {"blue-%d" % site.ports["blue"]: site.ports["blue"], track(site): site.ports["green"]}
        )
        site.package("1.1.0")
        return site

    return start


def test_no_traffic_with_no_data_pass_is_promoted(quiet_site, scraping_prometheus: ScrapingPrometheus) -> None:
    site = quiet_site()
    run = site.run(
        "1.1.0",
        canary_steps=[50, 100],
        canary_pause_seconds=3,
        canary_analysis=prometheus_analysis(scraping_prometheus, site, "pass"),
    )
    assert run.returncode == 0, run.report
    assert scraped_without_traffic(scraping_prometheus, site)
    assert analysis_decisions(site, "1.1.0") == [("50%", "allow"), ("100%", "allow")]
    assert deployments(site) == [("1.1.0", "successful")]
    assert site.versions_through_router() == {"1.1.0": 20}


def test_no_traffic_with_no_data_fail_is_aborted(quiet_site, scraping_prometheus: ScrapingPrometheus) -> None:
    site = quiet_site()
    run = site.run(
        "1.1.0",
        canary_steps=[50, 100],
        canary_pause_seconds=3,
        canary_analysis=prometheus_analysis(scraping_prometheus, site, "fail"),
    )
    assert run.returncode != 0
    assert "aborted at 50%" in run.output and "no_data: fail makes it failed" in run.output, run.report
    assert scraped_without_traffic(scraping_prometheus, site)
    assert analysis_decisions(site, "1.1.0") == [("50%", "deny")]
    assert deployments(site) == [("1.1.0", "rolled_back")]
    assert site.versions_through_router() == {"1.0.0": 20}


def test_no_traffic_with_no_data_inconclusive_asks_a_person(
    quiet_site, scraping_prometheus: ScrapingPrometheus
) -> None:
    site = quiet_site()
    analysis = prometheus_analysis(scraping_prometheus, site, "inconclusive")
    # Nobody at a terminal: the prompt gets no answer, and canary_unanswered=hold keeps the canary at 50%.
    held = site.run(
        "1.1.0", canary_steps=[50, 100], canary_pause_seconds=3, canary_unanswered="hold", canary_analysis=analysis
    )
    assert held.returncode == 0, held.report
    assert "Not waiting for response to prompt as stdin is not interactive" in held.output
    assert "is held at 50%" in held.output and "nobody answered" in held.output, held.report
    assert scraped_without_traffic(scraping_prometheus, site)
    assert analysis_decisions(site, "1.1.0") == [("50%", "wait")]
    assert deployments(site) == [("1.1.0", "in_progress")]
    # Read the router rather than send requests: a request to the canary would give the rerun's
    # analysis data (a 0/0 ratio instead of none), and the rerun must still see no data.
    assert router_weights(site) == {"blue": 50, "green": 50}
    # The default for no answer is abort; a rerun continues at the held step and aborts there.
    aborted = site.run("1.1.0", canary_steps=[50, 100], canary_analysis=analysis)
    assert aborted.returncode != 0 and "aborted at 50%" in aborted.output, aborted.report
    assert deployments(site) == [("1.1.0", "rolled_back")]
    assert site.versions_through_router() == {"1.0.0": 20}
    assert not site.listening("green")


def test_held_canary_is_aborted_or_promoted_by_their_entry_points(canary_site) -> None:
    site = canary_site("nginx")
    site.package("1.1.0")
    # A last step below 100 holds the canary there (an AWX approval node sits between two such runs).
    held = site.run("1.1.0", canary_steps=[25])
    assert held.returncode == 0 and "is held at 25%" in held.output, held.report
    assert set(site.versions_through_router(40)) == {"1.0.0", "1.1.0"}
    assert deployments(site) == [("1.1.0", "in_progress")]
    aborted = site.run("1.1.0", canary_entry="abort")
    assert aborted.returncode == 0, aborted.report
    assert site.versions_through_router() == {"1.0.0": 20} and not site.listening("green")
    assert deployments(site) == [("1.1.0", "rolled_back")]
    again = site.run("1.1.0", canary_entry="abort")
    assert again.returncode == 0 and recap_changed(again.output) == 0, again.report
    # The next attempt starts from 0 again, is held, and a person promotes it.
    held = site.run("1.1.0", canary_steps=[25])
    assert held.returncode == 0 and "is held at 25%" in held.output, held.report
    promoted = site.run("1.1.0", canary_entry="promote")
    assert promoted.returncode == 0, promoted.report
    assert site.versions_through_router() == {"1.1.0": 20} and not site.listening("blue")
    assert deployments(site) == [("1.1.0", "successful"), ("1.1.0", "rolled_back")]
    refused = site.run("1.1.0", canary_entry="abort")
    assert refused.returncode != 0 and "is promoted on localhost already" in refused.output, refused.report
