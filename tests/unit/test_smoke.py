"""Pure parts of the smoke checks: definitions, JSON paths, the table and the JUnit report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.relops.release.plugins.module_utils.smoke import (
    MISSING,
    SmokeCheckError,
    junit_xml,
    normalize_checks,
    resolve_json_path,
    run_checks,
    summary_table,
)

DOCUMENT = {"data": {"items": [{"state": "up"}, {"state": "down", "tags": ["a", "b"]}]}, "ok": None}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.items[0].state", "up"),
        ("data.items[-1].tags[1]", "b"),
        ("data.items[2].state", MISSING),
        ("data.missing", MISSING),
        ("ok", None),
        ("data.items.state", MISSING),
    ],
)
def test_resolve_json_path(path: str, expected: object) -> None:
    assert resolve_json_path(DOCUMENT, path) == expected


@pytest.mark.parametrize("path", ["", "a..b", "a[x]", "[0", "a]"])
def test_bad_json_path_is_refused(path: str) -> None:
    with pytest.raises(SmokeCheckError, match="json path"):
        resolve_json_path(DOCUMENT, path)


def test_types_are_inferred_and_defaults_filled() -> None:
    checks = normalize_checks(
        [
            {"name": "web", "url": "http://127.0.0.1:8080/"},
            {"port": 5432},
            {"name": "cmd", "command": "systemctl is-active app"},
        ]
    )
    assert [check["type"] for check in checks] == ["http", "tcp", "command"]
    assert checks[0]["status"] == [200] and checks[0]["method"] == "GET"
    assert checks[1]["name"] == "tcp-2" and checks[1]["host"] == "127.0.0.1"
    assert checks[2]["command"] == ["systemctl", "is-active", "app"]


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"name": "x"}, "type None is not one of"),
        ({"name": "x", "url": "ftp://host/"}, "is not an http:// or https:// URL"),
        ({"name": "x", "url": "http://h/", "cert_min_days": 5}, "cert_min_days needs an https:// url"),
        ({"name": "x", "url": "http://h/", "body_regex": "("}, "body_regex '(' is not a valid regular expression"),
        ({"name": "x", "url": "http://h/", "json": [{"path": "a"}]}, "exactly one of equals or contains"),
        ({"name": "x", "port": 70000}, "port 70000 is not a TCP port"),
        ({"name": "x", "port": 80, "retries": -1}, "retries -1 is below 0"),
        ({"name": "x", "command": []}, "command [] is empty"),
    ],
)
def test_bad_definitions_name_the_field(check: dict, message: str) -> None:
    with pytest.raises(SmokeCheckError, match=message.replace("(", r"\(").replace("[", r"\[")):
        normalize_checks([check])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(SmokeCheckError, match="repeated: web"):
        normalize_checks([{"name": "web", "port": 80}, {"name": "web", "port": 81}])


def _result(name: str, failures: list[str]) -> dict:
    return {
        "name": name,
        "type": "http",
        "target": "GET http://h/" + name,
        "passed": not failures,
        "failures": failures,
        "attempts": 1,
        "elapsed_ms": 12.0,
        "observed": {},
        "host": "web1",
    }


def test_table_and_junit_list_every_failure() -> None:
    results = [_result("a", []), _result("b", ["status 500, expected 200", "body does not match 'ok'"])]
    table = summary_table(results)
    assert table[0].split() == ["result", "check", "target", "tries", "ms", "details"]
    assert table[2].startswith("FAIL") and table[2].endswith("status 500, expected 200; body does not match 'ok'")
    root = ET.fromstring(junit_xml(results, "smoke"))
    assert root.get("tests") == "2" and root.get("failures") == "1"
    failure = root.find("./testsuite/testcase[@name='b']/failure")
    assert failure is not None and "body does not match" in (failure.text or "")
    assert root.find("./testsuite/testcase[@name='a']/failure") is None


def test_relative_urls_join_the_base_url() -> None:
    (check,) = normalize_checks([{"name": "health", "url": "/healthz"}], base_url="http://10.0.0.5:8080/")
    assert check["url"] == "http://10.0.0.5:8080/healthz"
    with pytest.raises(SmokeCheckError, match="url '/healthz' is relative; set base_url"):
        normalize_checks([{"name": "health", "url": "/healthz"}])


def test_manifest_script_checks_run_from_the_release_directory(tmp_path) -> None:
    script = tmp_path / "bin" / "healthcheck.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho healthy\n")
    script.chmod(0o755)
    checks = normalize_checks(
        [{"name": "script", "type": "script", "script": "bin/healthcheck.sh", "stdout_regex": "^healthy"}],
        script_dir=str(tmp_path),
    )
    assert checks[0]["command"] == [str(script)]
    assert run_checks(checks)[0]["passed"] is True


def test_a_relative_script_without_script_dir_names_the_fix() -> None:
    with pytest.raises(SmokeCheckError, match=r"script 'bin/x.sh' is relative to the release; set script_dir"):
        normalize_checks([{"name": "s", "type": "script", "script": "bin/x.sh"}])


def test_expect_status_is_status_by_another_name() -> None:
    check = normalize_checks([{"name": "web", "url": "http://127.0.0.1:1/", "expect_status": 204}])[0]
    assert check["status"] == [204]
    with pytest.raises(SmokeCheckError, match="give status or expect_status"):
        normalize_checks([{"name": "web", "url": "http://127.0.0.1:1/", "status": 200, "expect_status": 204}])
