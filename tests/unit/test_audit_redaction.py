"""Redaction of arguments and results, and what the recorder writes for hidden (no_log) results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.audit.recorder import Recorder, RecorderSettings
from ansible_collections.relops.release.plugins.plugin_utils.audit.redaction import Redactor, validate_patterns
from ansible_collections.relops.release.plugins.plugin_utils.runctx import Actor

SECRET = "s3cr3t-VALUE"


@pytest.mark.parametrize(
    ("key", "hidden"),
    [
        ("password", True),
        ("db_PASSWORD", True),
        ("api_key", True),
        ("client_secret", True),
        ("private_key", True),
        ("Authorization", True),
        ("x_auth_token", True),
        ("name", False),
        ("path", False),
        ("changed", False),
    ],
)
def test_keys_that_name_secrets_are_hidden(key: str, hidden: bool) -> None:
    redacted = Redactor().redact({key: SECRET})
    assert (redacted[key] == "[REDACTED key %s]" % key) is hidden
    assert (redacted[key] == SECRET) is not hidden


def test_values_with_the_shape_of_secrets_are_hidden_inside_text() -> None:
    redactor = Redactor()
    text = (
        "curl -H 'Authorization: Bearer eyJhbGciOi.abc' https://user:hunter2@example.com/x "
        "AKIAIOSFODNN7EXAMPLE ghp_0123456789abcdefghijklmnopqrstuvwxyzAB\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\ntrailing"
    )
    redacted = redactor.redact_text(text)
    for secret in ("eyJhbGciOi.abc", "hunter2", "AKIAIOSFODNN7EXAMPLE", "ghp_0123", "MIIEow"):
        assert secret not in redacted
    for marker in ("bearer", "url_password", "aws_access_key", "github_token", "pem"):
        assert "[REDACTED %s]" % marker in redacted
    assert redacted.startswith("curl -H 'Authorization: ") and redacted.endswith("\ntrailing")


def test_nested_structures_and_harmless_values_survive() -> None:
    redacted = Redactor().redact({"users": [{"name": "ann", "password": SECRET, "update_password": False}], "n": 3})
    assert redacted == {
        "users": [{"name": "ann", "password": "[REDACTED key password]", "update_password": False}],
        "n": 3,
    }


def test_bad_custom_pattern_is_named() -> None:
    with pytest.raises(ValueError, match=r"'\(unclosed' is not a valid regular expression"):
        validate_patterns(["(unclosed"], {})


def _recorder(tmp_path: Path, **settings: object) -> Recorder:
    recorder = Recorder(RecorderSettings(path=str(tmp_path / "audit.jsonl"), **settings))  # type: ignore[arg-type]
    recorder.begin_run(Actor(run_id="run-1", user="ops", host="box", awx_job_id="42"), "/srv/site.yml", "abc123")
    return recorder


def _events(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def test_no_log_hides_args_result_items_and_module_events(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path)
    fields = {"task": "t", "host": "h", "outcome": "changed", "changed": True}
    result = {"changed": True, "stdout": SECRET, "relops_audit": {"kind": "decision", "why": SECRET}}
    recorder.record_result(fields, result, {"cmd": SECRET}, True, item=False)
    recorder.record_result(fields, {"item": SECRET, "_ansible_no_log": True}, {"cmd": SECRET}, False, item=True)
    recorder.end_run()
    text = (tmp_path / "audit.jsonl").read_text()
    assert SECRET not in text
    runner, module_event, item, checkpoint = _events(tmp_path)
    assert runner["args"] == runner["result"] == "[REDACTED no_log]" and runner["event"] == "runner_changed"
    assert item["item"] == "[REDACTED no_log]" and item["event"] == "item_changed"
    assert module_event["kind"] == "decision" and module_event["data"] == "[REDACTED no_log]"
    assert checkpoint["checkpoint"]["first_seq"] == 1 and checkpoint["checkpoint"]["last_seq"] == 3


def test_module_events_and_actor_fields_are_recorded(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, checkpoint_every=2)
    result = {
        "changed": False,
        "relops_audit": [{"kind": "decision", "decision": "allow", "token": SECRET}, {"kind": "note"}],
        "invocation": {"module_args": {"service": "payments", "api_token": SECRET}},
        "_ansible_verbose_always": True,
    }
    recorder.record_result({"task": "gate", "host": "h", "outcome": "ok", "changed": False}, result, {}, False, False)
    recorder.end_run()
    runner, decision, first_checkpoint, note, last_checkpoint = _events(tmp_path)
    assert runner["args"] == {"service": "payments", "api_token": "[REDACTED key api_token]"}
    assert runner["result"] == {"changed": False}
    assert runner["actor"] == {"user": "ops", "host": "box", "awx_job_id": "42"} and runner["run_id"] == "run-1"
    assert runner["playbook"] == {"path": "/srv/site.yml", "revision": "abc123"}
    assert decision["event"] == "module_event" and decision["data"]["decision"] == "allow"
    assert decision["data"]["token"] == "[REDACTED key token]" and decision["task"] == "gate"
    assert first_checkpoint["event"] == last_checkpoint["event"] == "checkpoint"
    assert note["kind"] == "note"
    assert last_checkpoint["checkpoint"] == {
        "first_seq": 4,
        "last_seq": 4,
        "head": last_checkpoint["prev"],
        "key_id": None,
    }


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync 'always' must be one of event, task, play"):
        Recorder(RecorderSettings(path=str(tmp_path / "a.jsonl"), fsync="always"))
    with pytest.raises(ValueError, match="syslog_url 'udp://h:514' must look like tcp://"):
        Recorder(RecorderSettings(path=str(tmp_path / "a.jsonl"), syslog_url="udp://h:514"))
