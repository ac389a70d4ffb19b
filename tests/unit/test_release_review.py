"""Reviews as records (schema V25), on SQLite and PostgreSQL: feedback and follow-up actions kept beside
a release record, the post-implementation review listing them and flagging overdue actions, and the
runbook rule (an update within 48 h AFTER the deployment) over what the release record keeps."""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from test_metrics_dora import request

from ansible_collections.relops.release.plugins.plugin_utils.ledger import Ledger, open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.metrics.render import render
from ansible_collections.relops.release.plugins.plugin_utils.metrics.report import ReportInputs, build
from ansible_collections.relops.release.plugins.plugin_utils.release_record import ReleaseRecordStore
from ansible_collections.relops.release.plugins.plugin_utils.release_record import store as record_store
from ansible_collections.relops.release.plugins.plugin_utils.review import (
    ReviewError,
    ReviewStore,
    RunbookCheck,
    action_request,
    check_runbook,
    feedback_entry,
)
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

ACTOR = current_actor(environ={"RELOPS_RUN_ID": "review-run"})
FACTS = {"owner": "alice", "team": "payments", "source_revision": "abc", "commit_time": None, "runbook": None}
UTC = datetime.timezone.utc
# The day the reports below are made: 2026-03-10.
NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Clock:
    """The time the release record store stamps its next write with."""

    def __init__(self) -> None:
        self.now = ""

    def __call__(self) -> str:
        return self.now


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with open_ledger(parse_ledger_url(ledger_url)) as opened:
        yield opened


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    stamped = Clock()
    monkeypatch.setattr(record_store, "now_timestamp", stamped)
    return stamped


def at(day: int, hhmm: str) -> str:
    return "2026-03-%02dT%s:00.000000Z" % (day, hhmm)


def released(ledger: Ledger, clock: Clock, version: str, outcome: str, day: int, runbook: str | None = None) -> str:
    """One release to production of payments-api, deployed at 10:05 on ``day`` and finished at 10:10."""
    store = ReleaseRecordStore(ledger)
    clock.now = at(day, "10:00")
    digest = "sha256:" + version.replace(".", "") * 16
    record, _new = store.open_release(
        ACTOR, "payments-api", "production", version, digest, dict(FACTS, runbook=runbook)
    )
    clock.now = at(day, "10:05")
    store.record_stage(ACTOR, record["release_id"], "deployment", {"strategy": "blue_green"})
    clock.now = at(day, "10:10")
    store.record_stage(ACTOR, record["release_id"], "outcome", {"outcome": outcome})
    return str(record["release_id"])


def review(store: ReviewStore, release_id: str, feedback: list[dict[str, Any]], actions: list[dict[str, Any]]) -> Any:
    return store.record(ACTOR, release_id, [feedback_entry(e) for e in feedback], [action_request(a) for a in actions])


def test_feedback_and_actions_recorded_once_updated_in_place_and_closed(ledger: Ledger, clock: Clock) -> None:
    release_id = released(ledger, clock, "1.2.0", "rolled_back", 2)
    store = ReviewStore(ledger)
    feedback = [{"author": "alice", "text": "smoke tests caught it"}, {"author": "bob", "text": "no staging run"}]
    actions = [{"id": "rehearse", "title": "Rehearse the rollback", "owner": "bob", "due": "2026-03-05"}]
    # The plan (check mode) and the write agree; a second write of the same entries changes nothing.
    planned = store.plan(release_id, [feedback_entry(e) for e in feedback], [action_request(a) for a in actions])
    assert [f.author for f in planned.feedback] == ["alice", "bob"] and len(planned.actions) == 1
    assert store.review(release_id) == {"release_id": release_id, "feedback": [], "actions": []}
    done = review(store, release_id, feedback, actions)
    assert done.changed and len(done.feedback) == 2 and [a["action_id"] for a in done.actions] == ["rehearse"]
    again = review(store, release_id, [*feedback, {"author": "alice", "text": "smoke tests caught it"}], actions)
    assert not again.changed
    recorded = store.review(release_id)
    assert recorded is not None
    assert [(f["author"], f["text"]) for f in recorded["feedback"]] == [
        ("alice", "smoke tests caught it"),
        ("bob", "no staging run"),
    ]
    (action,) = recorded["actions"]
    assert (action["title"], action["owner"], action["due_date"], action["state"], action["done_at"]) == (
        "Rehearse the rollback",
        "bob",
        "2026-03-05",
        "open",
        None,
    )
    assert (action["service"], action["environment"], action["version"]) == ("payments-api", "production", "1.2.0")
    # Closing needs the id (or title) and the state only; owner and due date stay as recorded.
    closed = review(store, release_id, [], [{"id": "rehearse", "title": "Rehearse the rollback", "state": "done"}])
    assert closed.changed and closed.actions[0]["owner"] == "bob"
    recorded = store.review(release_id)
    assert recorded is not None and recorded["actions"][0]["state"] == "done" and recorded["actions"][0]["done_at"]
    # An action without an id is known by its title.
    review(store, release_id, [], [{"title": "Alert on 5xx", "owner": "carol", "due": "2026-04-01"}])
    assert [a["action_id"] for a in store.actions(state="open")] == ["Alert on 5xx"]


def test_refusals_name_the_value_and_the_fix(ledger: Ledger, clock: Clock) -> None:
    release_id = released(ledger, clock, "1.0.0", "successful", 2)
    store = ReviewStore(ledger)
    with pytest.raises(ReviewError, match=r"release nope@1/production/x has no record.*release_record_info"):
        review(store, "nope@1/production/x", [{"author": "a", "text": "b"}], [])
    with pytest.raises(ReviewError, match=r"'Fix it' is new and has no owner or due"):
        review(store, release_id, [], [{"title": "Fix it"}])
    with pytest.raises(ReviewError, match=r"due date '31/12/2026' is not a date; give it as YYYY-MM-DD"):
        action_request({"title": "Fix it", "owner": "bob", "due": "31/12/2026"})
    with pytest.raises(ReviewError, match=r"state 'closed' is not an action state; use one of open, done"):
        action_request({"title": "Fix it", "state": "closed"})
    with pytest.raises(ReviewError, match=r"needs an author \(who\) and a text \(what\)"):
        feedback_entry({"author": "bob", "text": " "})
    assert store.review(release_id) == {"release_id": release_id, "feedback": [], "actions": []}


def test_actions_across_releases_filtered_and_overdue(ledger: Ledger, clock: Clock) -> None:
    first = released(ledger, clock, "1.0.0", "successful", 2)
    second = released(ledger, clock, "1.1.0", "rolled_back", 3)
    store = ReviewStore(ledger)
    review(store, first, [], [{"title": "Document the flag", "owner": "alice", "due": "2026-03-20"}])
    review(
        store,
        second,
        [],
        [
            {"title": "Rehearse the rollback", "owner": "bob", "due": "2026-03-09"},
            {"title": "Add a canary", "owner": "bob", "due": "2026-03-01", "state": "done"},
        ],
    )
    assert [a["title"] for a in store.actions()] == ["Add a canary", "Rehearse the rollback", "Document the flag"]
    assert [a["title"] for a in store.actions(state="open", owner="bob")] == ["Rehearse the rollback"]
    assert [a["title"] for a in store.actions(state="open", due_before="2026-03-10")] == ["Rehearse the rollback"]
    assert store.actions(environment="staging") == [] and store.actions(service="web") == []


def test_the_review_report_lists_feedback_and_actions_and_flags_the_overdue(
    ledger: Ledger, clock: Clock, tmp_path: Any
) -> None:
    rolled_back = released(ledger, clock, "1.2.0", "rolled_back", 2)
    quiet = released(ledger, clock, "1.2.1", "successful", 3)
    store = ReviewStore(ledger)
    review(
        store,
        rolled_back,
        [{"author": "alice", "text": "The smoke tests caught it in a minute."}],
        [
            {"title": "Rehearse the rollback", "owner": "bob", "due": "2026-03-09"},
            {"title": "Alert on 5xx", "owner": "carol", "due": "2026-03-10"},
            {"title": "Add a canary", "owner": "dave", "due": "2026-03-01", "state": "done"},
        ],
    )
    inputs = ReportInputs(request("2026-03-01", "2026-03-14"), release_ids=[rolled_back, quiet], now=NOW)
    report = build(ledger, "pir", inputs)
    first, second = report.data["reviews"]
    assert first["release_id"] == rolled_back and first["deployment"]["status"] == "rolled_back"
    assert [(f["author"], f["text"]) for f in first["feedback"]] == [
        ("alice", "The smoke tests caught it in a minute.")
    ]
    # Due yesterday and open: overdue; due today: not yet; done: never.
    assert [(a["title"], a["overdue"]) for a in first["actions"]] == [
        ("Add a canary", False),
        ("Rehearse the rollback", True),
        ("Alert on 5xx", False),
    ]
    assert second["feedback"] == [] and second["actions"] == []
    assert [a["title"] for a in report.data["overdue"]] == ["Rehearse the rollback"]
    assert [a["title"] for a in report.data["open_actions"]] == ["Rehearse the rollback", "Alert on 5xx"]
    markdown = render(report.as_dict("covering March"), "md")
    assert "The smoke tests caught it in a minute." in markdown and "OVERDUE" in markdown
    assert "1 of 3 overdue." in markdown and "2 open, 1 overdue on 2026-03-10" in markdown
    assert "to be filled in by the team" not in markdown
    assert "No feedback recorded yet; record them with relops.release.release_review (release_id: %s)" % quiet in (
        markdown
    )


def test_a_reviewed_deployment_shows_the_review_of_its_release(ledger: Ledger, clock: Clock) -> None:
    release_id = released(ledger, clock, "1.2.0", "rolled_back", 2)
    record = ReleaseRecordStore(ledger).get_record(release_id)
    assert record is not None
    other = current_actor(environ={"RELOPS_RUN_ID": "unrelated-run"})
    deployments = [
        {
            "service": "payments-api",
            "version": "1.2.0",
            "environment": "production",
            "status": "rolled_back",
            "started_at": at(2, "10:01"),
            "finished_at": at(2, "10:09"),
            "artifact_digest": record["digest"],
        },
        {
            "service": "web",
            "version": "3.0.0",
            "environment": "production",
            "status": "failed",
            "started_at": at(2, "11:00"),
            "finished_at": at(2, "11:05"),
        },
    ]
    ledger.import_deployments(ACTOR, deployments[:1])
    ledger.import_deployments(other, deployments[1:])
    review(ReviewStore(ledger), release_id, [{"author": "bob", "text": "Slow rollback"}], [])
    report = build(ledger, "pir", ReportInputs(request("2026-03-01", "2026-03-14"), now=NOW))
    shown = {r["deployment"]["service"]: r for r in report.data["reviews"]}
    assert shown["payments-api"]["release_id"] == release_id
    assert [f["text"] for f in shown["payments-api"]["feedback"]] == ["Slow rollback"]
    assert shown["web"]["release_id"] is None and shown["web"]["feedback"] == []
    markdown = render(report.as_dict("covering March"), "md")
    assert "No feedback: this deployment has no release record to record them against." in markdown


def git_commit(repo: Any, name: str, text: str, when: str) -> None:
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    (repo / name).write_text(text)
    subprocess.run([*git, "add", name], check=True)
    env = dict(os.environ, GIT_COMMITTER_DATE=when, GIT_AUTHOR_DATE=when)
    subprocess.run([*git, "commit", "-qm", "runbook " + when], check=True, env=env)


def test_the_runbook_rule_wants_an_update_within_48_hours_after_the_deployment(tmp_path: Any) -> None:
    repo = tmp_path / "runbooks"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    git_commit(repo, "api.md", "v1\n", "2026-03-01T00:00:00Z")
    git_commit(repo, "api.md", "v2\n", "2026-03-03T09:00:00Z")
    deployed = datetime.datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
    path = str(repo / "api.md")
    # 23 hours after: compliant, and the update found is the one after the deployment, not the one before.
    assert check_runbook(path, None, deployed, 48, NOW) == RunbookCheck(
        "compliant", "git", datetime.datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    )
    # Updated only the day before (the old rule's "compliant"): not updated once the 48 h have passed,
    # pending while they run.
    before = datetime.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    assert check_runbook(path, None, before, 48, NOW).verdict == "not updated"
    assert check_runbook(path, None, before, 48, before + datetime.timedelta(hours=5)).verdict == "pending"
    # Outside git: the modification time within the period, before it, or later (which hides the period).
    loose = tmp_path / "web.md"
    loose.write_text("web\n")
    for moment, verdict in (
        ("2026-03-03T00:00:00", "compliant"),
        ("2026-03-01T00:00:00", "not updated"),
        ("2026-03-09T00:00:00", "unknown"),
    ):
        stamp = datetime.datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()
        os.utime(loose, (stamp, stamp))
        check = check_runbook("web.md", str(tmp_path), deployed, 48, NOW)
        assert (check.verdict, check.method) == (verdict, "mtime")
    assert check_runbook(None, None, deployed, 48, NOW).verdict == "no runbook"
    assert check_runbook("gone.md", str(tmp_path), deployed, 48, NOW).verdict == "missing"


def test_runbook_compliance_over_release_records(ledger: Ledger, clock: Clock, tmp_path: Any) -> None:
    repo = tmp_path / "runbooks"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    git_commit(repo, "api.md", "v1\n", "2026-03-01T00:00:00Z")
    git_commit(repo, "api.md", "v2\n", "2026-03-03T09:00:00Z")
    released(ledger, clock, "1.0.0", "successful", 2, runbook="runbooks/api.md")
    released(ledger, clock, "1.1.0", "rolled_back", 6, runbook="runbooks/api.md")
    released(ledger, clock, "1.2.0", "successful", 9, runbook="runbooks/api.md")
    released(ledger, clock, "1.3.0", "successful", 9)
    released(ledger, clock, "0.9.0", "aborted", 9, runbook="runbooks/api.md")
    inputs = ReportInputs(request("2026-03-01", "2026-03-14"), runbook_root=str(tmp_path), now=NOW)
    report = build(ledger, "runbook", inputs)
    assert [(d["version"], d["deployed_at"], d["verdict"]) for d in report.data["deployments"]] == [
        ("1.0.0", at(2, "10:05"), "compliant"),
        ("1.1.0", at(6, "10:05"), "not updated"),
        ("1.2.0", at(9, "10:05"), "pending"),
        ("1.3.0", at(9, "10:05"), "no runbook"),
    ]
    assert report.data["compliant"] == 1
    markdown = render(report.as_dict("covering March"), "md")
    assert "Runbooks not updated within 48 hours after the deployment" in markdown
