# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative smoke checks: HTTP(S), TCP connect and command, run all at once.

The same code runs on the controller (the smoke_check action) and on a target
(the smoke_check module), so it uses the standard library and ansible-core's
HTTP client (module_utils.urls) only. Every check runs to the end and reports all its failed
expectations; nothing stops at the first failure. Results keep the order the
checks were given in.
Target-safe: the standard library and ansible.module_utils only.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request

CHECK_TYPES = ("http", "tcp", "command", "script")
_COMMON_KEYS = ("name", "type", "retries", "delay", "timeout")
_KEYS = {
    "http": (
        "url",
        "method",
        "headers",
        "body",
        "status",
        "body_regex",
        "json",
        "header_regex",
        "max_latency_ms",
        "cert_min_days",
        "validate_certs",
        "ca_path",
        "expect_status",
    ),
    "tcp": ("host", "port"),
    "command": ("command", "rc", "stdout_regex", "stderr_regex"),
    # A script shipped in the release package (the manifest's vocabulary), run from script_dir.
    "script": ("script", "rc", "stdout_regex", "stderr_regex"),
}
# The one argument spec of the smoke_check action and module; check fields vary by type, so
# normalize_checks validates them.
SMOKE_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "checks": {"type": "list", "elements": "dict", "required": True},
    "run_from": {"type": "str", "default": "controller", "choices": ["controller", "targets"]},
    "concurrency": {"type": "int", "default": 8},
    "junit_path": {"type": "path"},
    "suite_name": {"type": "str", "default": "smoke"},
    "base_url": {"type": "str"},
    "script_dir": {"type": "path"},
}
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


class SmokeCheckError(ValueError):
    """A check definition is wrong; the message names the check, the field and the fix."""


class _Missing:
    """Marks a JSON path that leads nowhere (distinct from a JSON null)."""


MISSING = _Missing()


# Definitions


def normalize_checks(
    checks: Sequence[Any], base_url: Optional[str] = None, script_dir: Optional[str] = None
) -> List[Dict[str, Any]]:
    """Validate check definitions and fill in defaults; raise SmokeCheckError naming each problem.

    A URL starting with ``/`` is joined to ``base_url``, so a release manifest can declare its
    checks without knowing where it will be deployed.
    """
    if not isinstance(checks, (list, tuple)) or not checks:
        raise SmokeCheckError("checks must be a non-empty list of check definitions; see docs/validation.md")
    normalized = [
        normalize_check(_with_script_dir(_with_base_url(check, base_url), script_dir), index)
        for index, check in enumerate(checks)
    ]
    names = [check["name"] for check in normalized]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SmokeCheckError("check names must be unique, repeated: %s; rename them" % ", ".join(duplicates))
    return normalized


def _with_base_url(check: Any, base_url: Optional[str]) -> Any:
    if not isinstance(check, dict) or not str(check.get("url") or "").startswith("/"):
        return check
    if not base_url:
        raise SmokeCheckError(
            "check %r: url %r is relative; set base_url (e.g. http://127.0.0.1:8080) or give a full URL"
            % (check.get("name"), check["url"])
        )
    return dict(check, url=base_url.rstrip("/") + check["url"])


def _with_script_dir(check: Any, script_dir: Optional[str]) -> Any:
    if not isinstance(check, dict) or check.get("type") != "script" or os.path.isabs(str(check.get("script") or "")):
        return check
    if not script_dir:
        raise SmokeCheckError(
            "check %r: script %r is relative to the release; set script_dir (the deployed release's directory)"
            % (check.get("name"), check.get("script"))
        )
    return dict(check, script=os.path.join(script_dir, str(check.get("script") or "")))


def normalize_check(check: Any, index: int = 0) -> Dict[str, Any]:
    if not isinstance(check, dict):
        raise SmokeCheckError("check #%d is %r, not a mapping; write it as {name: ..., url: ...}" % (index + 1, check))
    kind = check.get("type") or _infer_type(check)
    name = str(check.get("name") or "%s-%d" % (kind or "check", index + 1))
    if kind not in CHECK_TYPES:
        raise SmokeCheckError(
            "check %r: type %r is not one of %s; set type or give url, port or command"
            % (name, kind, ", ".join(CHECK_TYPES))
        )
    unknown = sorted(set(check) - set(_COMMON_KEYS) - set(_KEYS[kind]))
    if unknown:
        raise SmokeCheckError(
            "check %r (%s): unknown field(s) %s; allowed are %s"
            % (name, kind, ", ".join(unknown), ", ".join(_COMMON_KEYS + _KEYS[kind]))
        )
    result: Dict[str, Any] = {
        "name": name,
        "type": kind,
        "retries": _number(check, name, "retries", 0, int, minimum=0),
        "delay": _number(check, name, "delay", 1.0, float, minimum=0),
        "timeout": _number(check, name, "timeout", 5.0, float, minimum=0.001),
    }
    result.update(_NORMALIZERS[kind](check, name))
    return result


def _infer_type(check: Dict[str, Any]) -> Optional[str]:
    if "url" in check:
        return "http"
    if "port" in check:
        return "tcp"
    if "command" in check:
        return "command"
    return None


def _number(
    check: Dict[str, Any], name: str, key: str, default: Any, kind: Callable[[Any], Any], minimum: float
) -> Any:
    value = check.get(key, default)
    if value is None:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SmokeCheckError(
            "check %r: %s %r is not a number; use e.g. %s: %s" % (name, key, value, key, default)
        ) from None
    if number < minimum:
        raise SmokeCheckError(
            "check %r: %s %r is below %s; use a value of at least %s" % (name, key, value, minimum, minimum)
        )
    return number


def _normalize_http(check: Dict[str, Any], name: str) -> Dict[str, Any]:
    url = str(check.get("url") or "")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise SmokeCheckError("check %r: url %r is not an http:// or https:// URL; give the full URL" % (name, url))
    if "status" in check and "expect_status" in check:
        raise SmokeCheckError("check %r: give status or expect_status (the same thing), not both" % name)
    status = check.get("status", check.get("expect_status", [200]))
    statuses = status if isinstance(status, list) else [status]
    try:
        statuses = [int(code) for code in statuses]
    except (TypeError, ValueError):
        raise SmokeCheckError(
            "check %r: status %r is not an HTTP status code or a list of them" % (name, status)
        ) from None
    _compile(check.get("body_regex"), name, "body_regex")
    header_regex = check.get("header_regex") or {}
    if not isinstance(header_regex, dict):
        raise SmokeCheckError("check %r: header_regex must map header names to regular expressions" % name)
    for header, pattern in header_regex.items():
        _compile(pattern, name, "header_regex.%s" % header)
    json_checks = check.get("json") or []
    if not isinstance(json_checks, list):
        raise SmokeCheckError("check %r: json must be a list of {path, equals} or {path, contains}" % name)
    for entry in json_checks:
        if not isinstance(entry, dict) or "path" not in entry or len(set(entry) & {"equals", "contains"}) != 1:
            raise SmokeCheckError(
                "check %r: json entry %r needs a path and exactly one of equals or contains" % (name, entry)
            )
        parse_json_path(str(entry["path"]))
    cert_min_days = _number(check, name, "cert_min_days", None, int, minimum=0)
    if cert_min_days is not None and not url.startswith("https://"):
        raise SmokeCheckError("check %r: cert_min_days needs an https:// url, got %r" % (name, url))
    return {
        "url": url,
        "method": str(check.get("method") or "GET").upper(),
        "headers": dict(check.get("headers") or {}),
        "body": check.get("body"),
        "status": statuses,
        "body_regex": check.get("body_regex"),
        "json": json_checks,
        "header_regex": header_regex,
        "max_latency_ms": _number(check, name, "max_latency_ms", None, float, minimum=0),
        "cert_min_days": cert_min_days,
        "validate_certs": bool(check.get("validate_certs", True)),
        "ca_path": check.get("ca_path"),
    }


def _normalize_tcp(check: Dict[str, Any], name: str) -> Dict[str, Any]:
    port = _number(check, name, "port", None, int, minimum=1)
    if port is None or port > 65535:
        raise SmokeCheckError("check %r: port %r is not a TCP port (1-65535)" % (name, check.get("port")))
    return {"host": str(check.get("host") or "127.0.0.1"), "port": port}


def _normalize_command(check: Dict[str, Any], name: str) -> Dict[str, Any]:
    command = check.get("command")
    argv = shlex.split(command) if isinstance(command, str) else command
    if not isinstance(argv, list) or not argv:
        raise SmokeCheckError(
            "check %r: command %r is empty; give a command line or a list of arguments" % (name, command)
        )
    _compile(check.get("stdout_regex"), name, "stdout_regex")
    _compile(check.get("stderr_regex"), name, "stderr_regex")
    return {
        "command": [str(part) for part in argv],
        "rc": _number(check, name, "rc", 0, int, minimum=-255),
        "stdout_regex": check.get("stdout_regex"),
        "stderr_regex": check.get("stderr_regex"),
    }


def _normalize_script(check: Dict[str, Any], name: str) -> Dict[str, Any]:
    script = str(check.get("script") or "")
    if not script:
        raise SmokeCheckError("check %r: script is empty; give the script's path inside the release" % name)
    return _normalize_command(dict(check, command=[script]), name)


_NORMALIZERS: Dict[str, Callable[[Dict[str, Any], str], Dict[str, Any]]] = {
    "http": _normalize_http,
    "tcp": _normalize_tcp,
    "command": _normalize_command,
    "script": _normalize_script,
}


def _compile(pattern: Any, name: str, key: str) -> None:
    if pattern is None:
        return
    try:
        re.compile(str(pattern))
    except re.error as exc:
        raise SmokeCheckError(
            "check %r: %s %r is not a valid regular expression (%s)" % (name, key, pattern, exc)
        ) from None


# JSON paths


def parse_json_path(path: str) -> List[Any]:
    """Split a dotted, indexed path like ``data.items[0].status`` into keys and indexes."""
    tokens: List[Any] = []
    position = 0
    for match in _PATH_TOKEN.finditer(path):
        gap = path[position : match.start()]
        if gap not in ("", "."):
            break
        key, index = match.groups()
        tokens.append(int(index) if index is not None else key)
        position = match.end()
    if not tokens or position != len(path):
        raise SmokeCheckError("json path %r is not of the form a.b[0].c; fix the path" % path)
    return tokens


def resolve_json_path(document: Any, path: str) -> Any:
    """Return the value at ``path`` in a parsed JSON document, or MISSING when the path leads nowhere."""
    value = document
    for token in parse_json_path(path):
        if isinstance(token, int):
            if not isinstance(value, list) or not -len(value) <= token < len(value):
                return MISSING
            value = value[token]
        else:
            if not isinstance(value, dict) or token not in value:
                return MISSING
            value = value[token]
    return value


# Running


def run_checks(
    checks: Sequence[Dict[str, Any]], concurrency: int = 8, skip_commands: bool = False
) -> List[Dict[str, Any]]:
    """Run normalized checks, up to ``concurrency`` at once; return one result per check, in order.

    ``skip_commands`` (check mode) reports command checks as skipped: a command may change things.
    """

    def run(check: Dict[str, Any]) -> Dict[str, Any]:
        if skip_commands and check["type"] in ("command", "script"):
            return skipped_result(check)
        return run_check(check)

    workers = max(1, min(concurrency, len(checks)))
    if workers == 1:
        return [run(check) for check in checks]
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, checks))


def skipped_result(check: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "name": check["name"],
        "type": check["type"],
        "target": describe_target(check),
        "passed": True,
        "failures": [],
        "attempts": 0,
        "elapsed_ms": 0.0,
        "observed": {},
        "skipped": True,
    }


def run_check(check: Dict[str, Any]) -> Dict[str, Any]:
    """Run one check with its retries; the result is that of the last attempt."""
    started = time.monotonic()
    attempts = 0
    failures: List[str] = []
    observed: Dict[str, Any] = {}
    # module_utils cannot import plugin_utils' Backoff, and a fixed delay is what a smoke check's retries mean.
    while True:
        attempts += 1
        failures, observed = _PROBES[check["type"]](check)
        if not failures or attempts > check["retries"]:
            break
        time.sleep(check["delay"])
    return {
        "name": check["name"],
        "type": check["type"],
        "target": describe_target(check),
        "passed": not failures,
        "failures": failures,
        "attempts": attempts,
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        "observed": observed,
    }


def describe_target(check: Dict[str, Any]) -> str:
    if check["type"] == "http":
        return "%s %s" % (check["method"], check["url"])
    if check["type"] == "tcp":
        return "%s:%d" % (check["host"], check["port"])
    return shlex.join(check["command"])


def _probe_http(check: Dict[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    failures: List[str] = []
    observed: Dict[str, Any] = {}
    status, headers, body, latency_ms, error = _fetch(check)
    observed["latency_ms"] = latency_ms
    if error is not None:
        return [error], observed
    observed["status"] = status
    if status not in check["status"]:
        failures.append("status %s, expected %s" % (status, " or ".join(str(code) for code in check["status"])))
    if check["max_latency_ms"] is not None and latency_ms > check["max_latency_ms"]:
        failures.append("latency %.0f ms over the ceiling of %.0f ms" % (latency_ms, check["max_latency_ms"]))
    text = body.decode("utf-8", errors="replace")
    if check["body_regex"] is not None and not re.search(str(check["body_regex"]), text):
        failures.append("body does not match %r" % check["body_regex"])
    for header, pattern in check["header_regex"].items():
        value = headers.get(header)
        if value is None:
            failures.append("header %s missing" % header)
        elif not re.search(str(pattern), value):
            failures.append("header %s %r does not match %r" % (header, value, pattern))
    if check["json"]:
        failures.extend(_check_json(text, check["json"]))
    if check["cert_min_days"] is not None:
        days, cert_error = certificate_days_left(check)
        observed["cert_days_left"] = days
        if cert_error is not None:
            failures.append(cert_error)
        elif days is not None and days < check["cert_min_days"]:
            failures.append("certificate expires in %d days, fewer than %d" % (days, check["cert_min_days"]))
    return failures, observed


def _fetch(check: Dict[str, Any]) -> Tuple[int, Dict[str, str], bytes, float, Optional[str]]:
    body = check["body"]
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    started = time.monotonic()
    try:
        # Our own TLS context: open_url would build one per request, reading every system CA certificate.
        # No netrc: its credentials are not the checked service's business.
        response = Request().open(
            check["method"],
            check["url"],
            data=data,
            headers=check["headers"],
            timeout=check["timeout"],
            validate_certs=check["validate_certs"],
            follow_redirects="safe",
            use_netrc=False,
            context=tls_context(check["ca_path"], check["validate_certs"]),
        )
        with response:
            content = response.read()
            status, headers = response.status, dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        content = exc.read()
        status, headers = exc.code, dict(exc.headers.items())
    except (urllib.error.URLError, OSError, ValueError, UrlsConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        latency = round((time.monotonic() - started) * 1000, 1)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return 0, {}, b"", latency, "no answer within the %gs timeout" % check["timeout"]
        return 0, {}, b"", latency, "request failed: %s" % reason
    latency = round((time.monotonic() - started) * 1000, 1)
    return status, headers, content, latency, None


_CONTEXTS: Dict[Tuple[Optional[str], bool], ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def tls_context(ca_path: Optional[str], validate_certs: bool) -> ssl.SSLContext:
    """One TLS context per CA file and verification choice, shared by the checks (contexts are thread-safe)."""
    key = (ca_path, validate_certs)
    with _CONTEXTS_LOCK:
        if key not in _CONTEXTS:
            context = ssl.create_default_context(cafile=ca_path)
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            _CONTEXTS[key] = context
        return _CONTEXTS[key]


def _check_json(text: str, expectations: Sequence[Dict[str, Any]]) -> List[str]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        return ["body is not JSON (%s)" % exc]
    failures: List[str] = []
    for expectation in expectations:
        path = str(expectation["path"])
        wanted = json.dumps(expectation.get("equals", expectation.get("contains")))
        value = resolve_json_path(document, path)
        if value is MISSING:
            failures.append("json %s is missing" % path)
        elif "equals" in expectation and value != expectation["equals"]:
            failures.append("json %s is %s, expected %s" % (path, json.dumps(value), wanted))
        elif "contains" in expectation and not _contains(value, expectation["contains"]):
            failures.append("json %s (%s) does not contain %s" % (path, json.dumps(value), wanted))
    return failures


def _contains(value: Any, wanted: Any) -> bool:
    if isinstance(value, str):
        return str(wanted) in value
    if isinstance(value, list):
        return wanted in value
    if isinstance(value, dict):
        return wanted in value
    return False


def certificate_days_left(check: Dict[str, Any]) -> Tuple[Optional[int], Optional[str]]:
    """Whole days until the server certificate's notAfter (verified chain, so the date is trustworthy)."""
    parts = urllib.parse.urlsplit(check["url"])
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context(cafile=check["ca_path"])
    if not check["validate_certs"]:
        context.check_hostname = False
    try:
        # Nested, not parenthesised: targets may run Pythons older than 3.10.
        with socket.create_connection((host, port), timeout=check["timeout"]) as raw:  # noqa: SIM117
            with context.wrap_socket(raw, server_hostname=host) as tls:
                certificate = tls.getpeercert()
    except (OSError, ssl.SSLError) as exc:
        return None, "certificate of %s:%d could not be read: %s; set ca_path to the issuing CA" % (host, port, exc)
    not_after = certificate.get("notAfter") if certificate else None
    if not isinstance(not_after, str):
        return None, "certificate of %s:%d has no expiry date" % (host, port)
    seconds = ssl.cert_time_to_seconds(not_after) - time.time()
    return int(seconds // 86400), None


def _probe_tcp(check: Dict[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    started = time.monotonic()
    try:
        with socket.create_connection((check["host"], check["port"]), timeout=check["timeout"]):
            pass
    except OSError as exc:
        latency = round((time.monotonic() - started) * 1000, 1)
        return ["connect to %s:%d failed: %s" % (check["host"], check["port"], exc)], {"latency_ms": latency}
    return [], {"latency_ms": round((time.monotonic() - started) * 1000, 1)}


def _probe_command(check: Dict[str, Any]) -> Tuple[List[str], Dict[str, Any]]:
    try:
        done = subprocess.run(check["command"], capture_output=True, text=True, timeout=check["timeout"], check=False)
    except subprocess.TimeoutExpired:
        return ["command did not finish within the %gs timeout" % check["timeout"]], {}
    except OSError as exc:
        return ["command could not start: %s" % exc], {}
    observed: Dict[str, Any] = {"rc": done.returncode, "stdout": done.stdout[-2000:], "stderr": done.stderr[-2000:]}
    failures = []
    if done.returncode != check["rc"]:
        failures.append("exit code %d, expected %d" % (done.returncode, check["rc"]))
    for stream in ("stdout", "stderr"):
        pattern = check["%s_regex" % stream]
        if pattern is not None and not re.search(str(pattern), str(observed[stream])):
            failures.append("%s does not match %r" % (stream, pattern))
    return failures, observed


_PROBES: Dict[str, Callable[[Dict[str, Any]], Tuple[List[str], Dict[str, Any]]]] = {
    "http": _probe_http,
    "tcp": _probe_tcp,
    "command": _probe_command,
    "script": _probe_command,
}


# Reporting


def summary_table(results: Sequence[Dict[str, Any]], host: str = "") -> List[str]:
    """Lines of a fixed-width table: one row per check, failures spelled out."""
    headers = ("result", "check", "target", "tries", "ms", "details")
    rows = [
        (
            "PASS" if result["passed"] else "FAIL",
            ("%s: " % result["host"] if result.get("host") and not host else "") + result["name"],
            result["target"],
            str(result["attempts"]),
            "%.0f" % result["elapsed_ms"],
            "; ".join(result["failures"]) or "ok",
        )
        for result in results
    ]
    widths = [max(len(row[column]) for row in [headers, *rows]) for column in range(len(headers) - 1)]
    lines = []
    for row in [headers, *rows]:
        cells = [row[column].ljust(widths[column]) for column in range(len(widths))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def junit_xml(results: Sequence[Dict[str, Any]], suite: str = "smoke") -> str:
    """A JUnit XML report: one testcase per check, a failure element listing every failed expectation."""
    failed = sum(1 for result in results if not result["passed"])
    total_seconds = sum(result["elapsed_ms"] for result in results) / 1000
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failed), errors="0")
    suite_element = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failed),
        errors="0",
        skipped="0",
        time="%.3f" % total_seconds,
    )
    for result in results:
        case = ET.SubElement(
            suite_element,
            "testcase",
            classname="%s.%s" % (suite, result.get("host") or result["type"]),
            name=result["name"],
            time="%.3f" % (result["elapsed_ms"] / 1000),
        )
        if not result["passed"]:
            failure = ET.SubElement(case, "failure", message="; ".join(result["failures"]), type="SmokeCheckFailure")
            failure.text = "%s\n%s" % (result["target"], "\n".join(result["failures"]))
    return ET.tostring(root, encoding="unicode")
