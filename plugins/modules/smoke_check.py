#!/usr/bin/python
# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The action plugin of the same name runs the checks on the controller, or
# sends this module to each target when run_from=targets.

from __future__ import annotations

DOCUMENTATION = r"""
module: smoke_check
short_description: Run declarative HTTP(S), TCP and command smoke checks and report every failure at once
version_added: 0.1.0
description:
  - Runs a list of checks right after a deployment switch and reports all of them, passed and failed,
    in one result; it never stops at the first failure.
  - An HTTP(S) check can expect a status, a body regular expression, values at JSON paths, response
    headers, a latency ceiling and a minimum number of days left on the server certificate.
    A TCP check connects to a port. A command check expects an exit code and output.
  - Each check has its own C(retries), C(delay) and C(timeout); checks run
    concurrently, up to O(concurrency) at a time.
  - The result holds a summary table (also in the failure message), structured results per check and,
    with O(junit_path), a JUnit XML report on the controller.
  - The same code runs on the controller (O(run_from=controller), the default) or on each target
    (O(run_from=targets)), for services that listen only on the target's loopback.
  - The syntax of checks is described in C(docs/validation.md); the C(relops.release.smoke_test) role
    reads them from the deployed release's C(manifest.json).
author:
  - relops.release maintainers (@relops)
requirements:
  - Runs on the controller (Python 3.11 or newer); the checks run on the target with its Python's standard library
options:
  checks:
    description:
      - The checks. Each is a mapping with a C(name) and the fields of its type; the type is
        inferred from C(url) (http), C(port) (tcp) or C(command) (command) when not given.
      - "HTTP fields are C(url), C(method), C(headers), C(body), C(status) (a code or a list, default 200),
        C(body_regex), C(json) (a list of C({path, equals}) or C({path, contains}), paths like C(data.items[0].state)),
        C(header_regex) (header name to regular expression), C(max_latency_ms), C(cert_min_days),
        C(validate_certs) (default true) and C(ca_path)."
      - TCP fields are C(host) (default 127.0.0.1) and C(port).
      - Command fields are C(command) (a command line or a list, run without a shell), C(rc) (default 0),
        C(stdout_regex) and C(stderr_regex).
      - "Every check also takes C(retries) (how many times to try again after a failed attempt, default 0;
        the last attempt counts), C(delay) (seconds between attempts, default 1) and C(timeout) (seconds one
        attempt may take, default 5)."
    type: list
    elements: dict
    required: true
  run_from:
    description:
      - V(controller) runs the checks from the controller, once per host the task runs for (use
        C(run_once=true) when the checks name their own URLs).
      - V(targets) runs them on each target host (no Python libraries needed there), so C(127.0.0.1)
        means the target.
    type: str
    choices: [controller, targets]
    default: controller
  concurrency:
    description: How many checks run at the same time. V(1) runs them one by one.
    type: int
    default: 8
  junit_path:
    description:
      - Write a JUnit XML report to this path on the controller. With several hosts, include the host
        in the path (for example C(smoke-{{ inventory_hostname }}.xml)).
    type: path
  suite_name:
    description: The test suite name in the JUnit report.
    type: str
    default: smoke
  base_url:
    description:
      - Joined to every check URL that starts with C(/), for example V(http://127.0.0.1:8080), so the
        checks a release manifest declares need not know where the release runs.
    type: str
  script_dir:
    description:
      - The directory a V(script) check's relative C(script) path is taken from, usually the
        deployed release's directory. Scripts run where the checks run (O(run_from)).
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: posix
  check_mode:
    support: partial
    details: HTTP and TCP checks only read, so they run; command checks are not run and are reported as skipped.
  diff_mode:
    support: none
notes:
  - The task fails when any check fails; use C(failed_when) or C(ignore_errors) to act on the result instead.
seealso:
  - module: relops.release.health_gate
"""

EXAMPLES = r"""
- name: Smoke-test the new release from the controller
  relops.release.smoke_check:
    junit_path: "{{ playbook_dir }}/reports/smoke.xml"
    checks:
      - name: health
        url: https://payments.example.com/healthz
        json:
          - path: status
            equals: ok
          - path: components
            contains: db
        max_latency_ms: 300
        cert_min_days: 14
        retries: 3
        delay: 2
      - name: database port
        host: db.example.com
        port: 5432
  run_once: true

- name: Check the service on each host's loopback
  relops.release.smoke_check:
    run_from: targets
    checks:
      - name: local health
        url: http://127.0.0.1:8080/healthz
        status: [200, 204]
      - name: worker running
        command: systemctl is-active payments-worker
        stdout_regex: ^active
"""

RETURN = r"""
passed:
  description: Whether every check passed.
  returned: always
  type: bool
failed_checks:
  description: The names of the checks that failed.
  returned: always
  type: list
  elements: str
summary:
  description: The summary table, one line per check after the header.
  returned: always
  type: list
  elements: str
results:
  description: One entry per check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check's name.
      type: str
    type:
      description: V(http), V(tcp) or V(command).
      type: str
    target:
      description: What was checked (method and URL, host and port, or the command line).
      type: str
    passed:
      description: Whether the last attempt met every expectation.
      type: bool
    failures:
      description: Every expectation the last attempt missed, in words.
      type: list
      elements: str
    attempts:
      description: How many attempts were made.
      type: int
    elapsed_ms:
      description: Time spent on the check, retries included.
      type: float
    observed:
      description: What was measured (status, latency_ms, cert_days_left; rc, stdout, stderr).
      type: dict
    skipped:
      description: True for command checks in check mode.
      type: bool
junit_path:
  description: Where the JUnit XML report was written.
  returned: when O(junit_path) is set
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.relops.release.plugins.module_utils.smoke import (
    SMOKE_ARGUMENT_SPEC,
    SmokeCheckError,
    normalize_checks,
    run_checks,
    summary_table,
)


def run_module() -> None:
    # The check fields vary by type, so normalize_checks validates them, not the argument spec.
    module = AnsibleModule(argument_spec=SMOKE_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        checks = normalize_checks(module.params["checks"], module.params["base_url"], module.params["script_dir"])
    except SmokeCheckError as exc:
        module.fail_json(msg=str(exc))
    results = run_checks(checks, module.params["concurrency"], skip_commands=module.check_mode)
    failed = [result["name"] for result in results if not result["passed"]]
    module.exit_json(
        changed=False, passed=not failed, failed_checks=failed, results=results, summary=summary_table(results)
    )


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
