"""Release plan validation and analysis (plugins/plugin_utils/planning), without Ansible."""

from __future__ import annotations

import copy
import datetime
from typing import Any, Dict

import icalendar
import pytest

from ansible_collections.relops.release.plugins.plugin_utils.calendar import load_windows
from ansible_collections.relops.release.plugins.plugin_utils.itsm.cmdb import (
    environment_ci_name,
    record_service_deployment,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.local import LocalBackend
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.planning.analysis import (
    analyse,
    dependency_order,
    make_calendar_check,
)
from ansible_collections.relops.release.plugins.plugin_utils.planning.cmdb import related_cis
from ansible_collections.relops.release.plugins.plugin_utils.planning.export import to_html, to_ical, to_markdown
from ansible_collections.relops.release.plugins.plugin_utils.planning.plan import PlanError, load_plan
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

UTC = datetime.timezone.utc
AS_OF = datetime.datetime(2026, 11, 26, tzinfo=UTC)

PLAN: Dict[str, Any] = {
    "name": "Retail roadmap 2027",
    "buffer_days": 5,
    "releases": [
        {
            "id": "core-27.1",
            "title": "Core platform",
            "class": "strategic",
            "quarter": "2027-Q1",
            "business_unit": "platform",
            "start": datetime.date(2027, 1, 18),
            "end": "2027-01-19",
            "milestones": [
                {"name": "scope freeze", "date": "2026-12-15"},
                {"name": "CAB review", "date": "2027-01-10"},
                {"name": "go/no-go", "date": "2027-01-17"},
            ],
            "cis": ["core-db"],
        },
        {
            "id": "payments-27.1",
            "title": "Payments with new HSM",
            "class": "operational",
            "quarter": "2027-Q1",
            "business_unit": "retail",
            "start": "2027-02-01",
            "end": "2027-02-02",
            "depends_on": ["core-27.1"],
            "milestones": [{"name": "go/no-go", "date": "2027-01-30"}],
            "vendors": [{"vendor": "acme", "delivery": "HSM firmware", "date": "2027-01-20", "buffer_days": 7}],
            "scope": [
                {"id": "FEAT-12", "type": "feature"},
                {"id": "PCI-4.0", "type": "compliance", "deadline": "2027-02-10"},
            ],
            "cis": ["payments-api"],
        },
        {
            "id": "orders-27.1",
            "class": "operational",
            "quarter": "2027-Q1",
            "business_unit": "retail",
            "start": "2027-02-01T08:00:00Z",
            "end": "2027-02-01T12:00:00+00:00",
            "milestones": [{"name": "go/no-go", "date": "2027-01-30"}],
            "depends_on": ["core-27.1"],
            "cis": ["orders-api"],
        },
    ],
}


def _plan(**changes: Any) -> Dict[str, Any]:
    document = copy.deepcopy(PLAN)
    for key, value in changes.items():
        document[key] = value
    return document


def _kinds(analysis: Any) -> Dict[str, int]:
    return analysis.counts()


def test_a_clean_plan_has_an_order_and_rigor_per_class() -> None:
    analysis = analyse(load_plan(_plan()), related={}, as_of=AS_OF)
    assert analysis.order == ["core-27.1", "payments-27.1", "orders-27.1"]
    assert analysis.order.index("core-27.1") < analysis.order.index("payments-27.1")
    assert analysis.rigor["core-27.1"]["approvals"][0] == "change advisory board"
    assert analysis.rigor["payments-27.1"]["approvals"] == ["change manager"]
    assert analysis.findings == [], [f.message for f in analysis.findings]
    assert analysis.moves == []


def test_related_cis_in_overlapping_windows_conflict() -> None:
    related = {"payments-api": {"payments-db", "orders-api"}, "orders-api": {"payments-api"}, "core-db": set()}
    analysis = analyse(load_plan(_plan()), related=related, as_of=AS_OF)
    conflicts = [f for f in analysis.findings if f.kind == "ci_conflict"]
    assert len(conflicts) == 1
    assert sorted(conflicts[0].releases) == ["orders-27.1", "payments-27.1"]
    assert conflicts[0].details == {"same": [], "related": ["orders-api", "payments-api"]}


def test_the_same_ci_conflicts_only_while_windows_overlap() -> None:
    document = _plan()
    document["releases"][2]["cis"] = ["payments-api"]
    assert [f.details["same"] for f in analyse(load_plan(document)).findings if f.kind == "ci_conflict"] == [
        ["payments-api"]
    ]
    document["releases"][2]["start"] = "2027-02-03"
    document["releases"][2]["end"] = "2027-02-03"
    assert not [f for f in analyse(load_plan(document)).findings if f.kind == "ci_conflict"]


def test_vendor_slip_and_what_moves_with_the_vendor() -> None:
    document = _plan()
    document["releases"][1]["vendors"][0]["date"] = "2027-01-28"
    analysis = analyse(load_plan(document), as_of=AS_OF)
    slips = [f for f in analysis.findings if f.kind == "vendor_slip"]
    assert len(slips) == 1 and slips[0].details["short_days"] == 3.0, slips
    assert [m.release for m in analysis.moves] == ["payments-27.1"]
    assert analysis.moves[0].new_start == datetime.datetime(2027, 2, 4, tzinfo=UTC)

    what_if = analyse(load_plan(_plan()), as_of=AS_OF, vendor_moves=[{"vendor": "acme", "date": "2027-02-06"}])
    move = what_if.moves[0]
    assert move.release == "payments-27.1" and move.days == 12.0 and move.because == ["vendor acme HSM firmware"]
    risk = [f for f in what_if.findings if f.kind == "compliance_at_risk"]
    assert len(risk) == 1 and risk[0].details["slipped"] is True and risk[0].details["item"] == "PCI-4.0"


def test_a_dependency_slip_moves_the_dependents() -> None:
    document = _plan()
    document["releases"][0]["vendors"] = [{"vendor": "globex", "date": "2027-01-31"}]
    analysis = analyse(load_plan(document), as_of=AS_OF)
    moved = {m.release: m for m in analysis.moves}
    assert moved["core-27.1"].new_start == datetime.datetime(2027, 2, 5, tzinfo=UTC)
    assert moved["payments-27.1"].because == ["dependency core-27.1"]
    assert moved["payments-27.1"].new_start == datetime.datetime(2027, 2, 7, tzinfo=UTC)
    assert moved["orders-27.1"].new_start == datetime.datetime(2027, 2, 7, tzinfo=UTC)


def test_compliance_deadline_before_the_planned_end_is_an_error() -> None:
    document = _plan()
    document["releases"][1]["scope"][1]["deadline"] = "2027-01-31"
    risk = [f for f in analyse(load_plan(document)).findings if f.kind == "compliance_at_risk"]
    assert len(risk) == 1 and risk[0].severity == "error" and risk[0].details["slipped"] is False


def test_dependency_order_violation_and_governance_findings() -> None:
    document = _plan()
    document["releases"][1]["start"] = "2027-01-19"
    document["releases"][1]["milestones"] = []
    document["releases"][0]["start"] = "2026-12-10"
    analysis = analyse(load_plan(document), as_of=AS_OF)
    kinds = _kinds(analysis)
    assert kinds.get("dependency_order") == 1
    messages = [f.message for f in analysis.findings if f.kind == "governance"]
    assert any("'go/no-go'" in m and "payments-27.1" in m for m in messages), messages
    assert any("needs 30 days' notice" in m for m in messages), messages


def test_a_dependency_cycle_is_named() -> None:
    document = _plan()
    document["releases"][0]["depends_on"] = ["orders-27.1"]
    with pytest.raises(PlanError) as caught:
        dependency_order(load_plan(document))
    message = str(caught.value)
    assert "dependency cycle" in message
    assert "core-27.1" in message and "orders-27.1" in message and "payments" not in message


def test_vendor_date_in_the_wrong_format_names_its_path() -> None:
    document = _plan()
    document["releases"][1]["vendors"][0]["date"] = "20/01/2027"
    with pytest.raises(PlanError) as caught:
        load_plan(document)
    assert "plan.releases[1].vendors[0].date: '20/01/2027' is not a date" in str(caught.value)


def test_impossible_dates_unknown_keys_and_missing_deadlines_are_all_reported() -> None:
    document = _plan()
    document["releases"][0]["start"] = "2027-02-30"
    document["releases"][1]["scope"][1].pop("deadline")
    document["releases"][2]["owner"] = "x"
    with pytest.raises(PlanError) as caught:
        load_plan(document)
    message = str(caught.value)
    assert "plan.releases[1].scope[1]: 'deadline' is a required property" in message
    assert "plan.releases[2]: Additional properties are not allowed ('owner' was unexpected)" in message
    document["releases"][1]["scope"][1]["deadline"] = "2027-02-10"
    del document["releases"][2]["owner"]
    with pytest.raises(PlanError, match=r"plan.releases\[0\].start: '2027-02-30' is not a valid date"):
        load_plan(document)


def test_unknown_dependency_and_duplicate_ids() -> None:
    document = _plan()
    document["releases"][2]["depends_on"] = ["nope"]
    with pytest.raises(PlanError, match=r"plan.releases\[2\].depends_on: 'nope' is not a release"):
        analyse(load_plan(document))
    document = _plan()
    document["releases"][2]["id"] = "core-27.1"
    with pytest.raises(PlanError, match=r"plan.releases\[2\].id: 'core-27.1' is already release 0"):
        load_plan(document)


def test_unknown_vendor_move_is_refused() -> None:
    with pytest.raises(PlanError, match="no release depends on vendor 'initech'"):
        analyse(load_plan(_plan()), vendor_moves=[{"vendor": "initech", "date": "2027-02-01"}])


def test_exports_are_stable_and_parse() -> None:
    analysis = analyse(load_plan(_plan()), as_of=AS_OF, vendor_moves=[{"vendor": "acme", "date": "2027-02-06"}])
    ical = to_ical(analysis, AS_OF)
    assert ical == to_ical(analysis, AS_OF)
    parsed = icalendar.Calendar.from_ical(ical)
    events = {str(e["uid"]): e for e in parsed.walk("VEVENT")}
    release = events["payments-27.1@relops.release"]
    assert release.decoded("dtstart") == datetime.datetime(2027, 2, 1, tzinfo=UTC)
    assert release.decoded("dtend") == datetime.datetime(2027, 2, 3, tzinfo=UTC)
    assert "change manager" in str(release["description"])
    assert events["payments-27.1.deadline.PCI-4.0@relops.release"].decoded("dtstart") == datetime.date(2027, 2, 10)
    assert events["payments-27.1.vendor.0@relops.release"].decoded("dtstart") == datetime.date(2027, 1, 20)
    markdown = to_markdown(analysis)
    row = "| payments-27.1 — Payments with new HSM | operational | retail"
    row += " | 2027-02-01 to 2027-02-02 (feasible 2027-02-13)"
    assert row in markdown
    assert "payments-27.1: 2027-02-01 to 2027-02-13 (+12.0 days) because of vendor acme HSM firmware" in markdown
    document = _plan()
    document["releases"][0]["title"] = "<script>alert(1)</script>"
    html = to_html(analyse(load_plan(document)))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_releases_inside_peak_periods_and_blackouts_are_findings() -> None:
    sources = [
        {
            "type": "windows",
            "name": "governance",
            "windows": [
                {
                    "name": "peak: retail sale",
                    "kind": "blackout",
                    "start": "2027-01-31",
                    "end": "2027-02-01",
                    "scope": {"business_unit": ["retail"]},
                },
                {
                    "name": "platform freeze",
                    "kind": "blackout",
                    "start": "2027-03-01",
                    "end": "2027-03-02",
                    "scope": {"business_unit": ["platform"]},
                },
                {
                    "name": "Sunday maintenance",
                    "kind": "maintenance",
                    "cron_start": "0 2 * * 0",
                    "cron_end": "0 6 * * 0",
                },
            ],
        }
    ]
    plan = load_plan(_plan(calendars=sources))
    check = make_calendar_check(load_windows(plan.calendars, plan.default_tz, None))
    findings = [f for f in analyse(plan, as_of=AS_OF, calendar_check=check).findings if f.kind == "calendar"]
    assert sorted(f.releases[0] for f in findings) == ["orders-27.1", "payments-27.1"]
    assert all(f.details["window"]["name"] == "peak: retail sale" for f in findings)


def test_a_release_reads_the_services_ci_in_its_environment(tmp_path: Any) -> None:
    """payments-api and orders-api share web01 in production only; staging's payments-api CI runs elsewhere."""
    url = "sqlite:///" + str(tmp_path / "ledger.db").lstrip("/")
    with open_ledger(parse_ledger_url(url)) as ledger:
        backend = LocalBackend(ledger, current_actor(environ={"RELOPS_RUN_ID": "unit-run"}))
        hosts = {name: backend.create_ci("cmdb_ci_linux_server", {"name": name}) for name in ("web01", "stg01")}
        backend.create_ci("cmdb_ci", {"name": "core-db"})
        for service, environment, host in (
            ("payments-api", "production", "web01"),
            ("orders-api", "production", "web01"),
            ("payments-api", "staging", "stg01"),
        ):
            name = environment_ci_name(service, environment)
            record_service_deployment(backend, name, environment, "1.0.0", [hosts[host]], "cmdb_ci_appl", True, False)
        document = _plan()
        document["related_depth"] = 2
        document["releases"][1].update(environment="production")
        document["releases"][2].update(environment="production", cis=["orders-api"])
        production = related_cis(load_plan(document), backend)
        assert production["payments-api"] == {"web01", "orders-api"}, "another release's CI, by the name it uses"
        document["releases"][1].update(environment="staging")
        assert related_cis(load_plan(document), backend)["payments-api"] == {"stg01"}
        document["releases"][2].update(environment="test")
        with pytest.raises(PlanError, match=r"CI 'orders-api' of release orders-27.1 is not in the CMDB"):
            related_cis(load_plan(document), backend)
