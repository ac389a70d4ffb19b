"""relops.release.config_drift (config_baseline / drift_scan) through real ansible-playbook runs."""

from __future__ import annotations

import json
import os
import pwd
import stat

import pytest
from fixtures.playbooks import Ansible

PLAY = """
- name: Drift
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Baseline or scan
      ansible.builtin.include_role:
        name: relops.release.config_drift
    - name: Keep the results for the test
      ansible.builtin.copy:
        content: >-
          {{ {'baseline': config_drift_baseline | default({}),
              'scan': config_drift_scan | default({})} | to_nice_json }}
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


class Host:
    """A tree of configuration files, a fake /proc/sys and the baseline location, in a temporary folder."""

    def __init__(self, ansible: Ansible) -> None:
        self.ansible = ansible
        self.root = os.path.join(ansible.workdir, "etc-app")
        self.sysctl = os.path.join(ansible.workdir, "proc-sys")
        self.baseline = os.path.join(ansible.workdir, "state", "baseline.json")
        os.makedirs(os.path.join(self.root, "conf.d"))
        self.write("app.conf", "port = 8080\n", 0o644)
        self.write("conf.d/tls.conf", "tls = on\n", 0o600)
        os.makedirs(os.path.join(self.sysctl, "net", "ipv4"))
        with open(os.path.join(self.sysctl, "net", "ipv4", "ip_forward"), "w", encoding="utf-8") as handle:
            handle.write("0\n")
        self.playbook = ansible.write_playbook(PLAY, "drift.yml")
        self.runs = 0

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def write(self, name: str, text: str, mode: int) -> None:
        with open(self.path(name), "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(self.path(name), mode)

    def read(self, name: str) -> str:
        with open(self.path(name), encoding="utf-8") as handle:
            return handle.read()

    def run(self, *args: str, **extra: object) -> tuple[int, dict, str]:
        self.runs += 1
        result_file = os.path.join(self.ansible.workdir, "result-%d.json" % self.runs)
        variables = {
            "config_drift_baseline_path": self.baseline,
            "config_drift_sysctl_root": self.sysctl,
            "result_file": result_file,
            **extra,
        }
        run = self.ansible.playbook(self.playbook, "-e", json.dumps(variables), *args)
        result = {}
        if os.path.exists(result_file):
            with open(result_file, encoding="utf-8") as handle:
                result = json.load(handle)
        return run.returncode, result, run.output

    def take_baseline(self, *args: str, **extra: object) -> tuple[int, dict, str]:
        return self.run(
            *args,
            config_drift_mode="baseline",
            config_drift_files=[self.root],
            config_drift_packages=["coreutils", "relops-no-such-package"],
            config_drift_sysctls=["net.ipv4.ip_forward"],
            **extra,
        )


@pytest.fixture
def host(ansible: Ansible) -> Host:
    return Host(ansible)


def _drift(result: dict) -> set[tuple[str, str, str]]:
    return {(item["kind"], item["name"], item["field"]) for item in result["scan"]["drift"]}


def test_baseline_is_idempotent_and_check_mode_writes_nothing(host: Host) -> None:
    code, result, output = host.take_baseline("--check")
    assert code == 0, output
    assert result["baseline"]["changed"] is True and not os.path.exists(host.baseline)
    code, result, output = host.take_baseline()
    assert code == 0, output
    assert result["baseline"]["changed"] is True
    assert result["baseline"]["counts"] == {"files": 2, "packages": 2, "services": 0, "sysctls": 1}
    assert result["baseline"]["stored"] == 2
    with open(host.baseline, encoding="utf-8") as handle:
        document = json.load(handle)
    assert document["packages"]["relops-no-such-package"] is None
    assert document["packages"]["coreutils"]
    assert document["files"][host.path("conf.d/tls.conf")]["mode"] == "0600"
    code, result, output = host.take_baseline()
    assert code == 0, output
    assert result["baseline"]["changed"] is False and result["baseline"]["stored"] == 0
    code, result, output = host.run()
    assert code == 0, output
    assert result["scan"]["drifted"] is False and result["scan"]["drift"] == []


def test_scan_reports_drift_and_remediation_restores_it(host: Host) -> None:
    assert host.take_baseline()[0] == 0
    nobody = pwd.getpwnam("nobody")
    host.write("app.conf", "port = 9090\n", 0o666)
    os.chown(host.path("app.conf"), nobody.pw_uid, -1)
    os.unlink(host.path("conf.d/tls.conf"))
    host.write("conf.d/extra.conf", "debug = true\n", 0o644)
    with open(os.path.join(host.sysctl, "net", "ipv4", "ip_forward"), "w", encoding="utf-8") as handle:
        handle.write("1\n")
    with open(host.baseline, encoding="utf-8") as handle:
        document = json.load(handle)
    document["packages"]["coreutils"] = "0.0-pinned"
    with open(host.baseline, "w", encoding="utf-8") as handle:
        json.dump(document, handle)

    code, result, output = host.run()
    assert code == 0, output
    expected = {
        ("file", host.path("app.conf"), "sha256"),
        ("file", host.path("app.conf"), "owner"),
        ("file", host.path("app.conf"), "mode"),
        ("file", host.path("conf.d/tls.conf"), "state"),
        ("file", host.path("conf.d/extra.conf"), "state"),
        ("sysctl", "net.ipv4.ip_forward", "value"),
        ("package", "coreutils", "version"),
    }
    assert _drift(result) == expected
    assert result["scan"]["changed"] is False
    assert "mode: 0644" in result["scan"]["drift_diff"]["before"]
    assert "mode: 0666" in result["scan"]["drift_diff"]["after"]
    assert "net.ipv4.ip_forward value: 1" in result["scan"]["drift_diff"]["after"]

    code, result, output = host.run("--check", "--diff", config_drift_remediate=True)
    assert code == 0, output
    assert result["scan"]["changed"] is True
    assert "+file %s mode: 0644" % host.path("app.conf") in output
    assert host.read("app.conf") == "port = 9090\n" and not os.path.exists(host.path("conf.d/tls.conf"))

    code, result, output = host.run("--diff", config_drift_remediate=True)
    assert code == 0, output
    assert result["scan"]["changed"] is True
    left = {(item["kind"], item["name"]) for item in result["scan"]["unremediated"]}
    assert left == {("file", host.path("conf.d/extra.conf")), ("package", "coreutils")}
    assert host.read("app.conf") == "port = 8080\n"
    info = os.stat(host.path("app.conf"))
    assert stat.S_IMODE(info.st_mode) == 0o644 and info.st_uid == os.getuid()
    assert host.read("conf.d/tls.conf") == "tls = on\n"
    assert stat.S_IMODE(os.stat(host.path("conf.d/tls.conf")).st_mode) == 0o600
    with open(os.path.join(host.sysctl, "net", "ipv4", "ip_forward"), encoding="utf-8") as handle:
        assert handle.read().strip() == "0"

    code, result, output = host.run(config_drift_remediate=True)
    assert code == 0, output
    assert result["scan"]["changed"] is False
    assert _drift(result) == {("file", host.path("conf.d/extra.conf"), "state"), ("package", "coreutils", "version")}


def test_fail_on_drift_names_what_remains(host: Host) -> None:
    assert host.take_baseline()[0] == 0
    os.chmod(host.path("app.conf"), 0o600)
    code, _result, output = host.run(config_drift_fail_on_drift=True)
    assert code != 0
    assert "file %s mode" % host.path("app.conf") in output
    code, _result, output = host.run(config_drift_fail_on_drift=True, config_drift_remediate=True)
    assert code == 0, output
    assert stat.S_IMODE(os.stat(host.path("app.conf")).st_mode) == 0o644


def test_scan_without_baseline_fails_naming_it(host: Host) -> None:
    code, _result, output = host.run()
    assert code != 0
    assert "no baseline at %s" % host.baseline in output and "config_baseline" in output


def test_relative_path_is_refused(host: Host) -> None:
    code, _result, output = host.run(config_drift_mode="baseline", config_drift_files=["etc/app.conf"])
    assert code != 0
    assert "'etc/app.conf' is relative" in output


def test_services_are_recorded_as_systemd_reports_them(host: Host) -> None:
    # Both kinds of host are covered: CI containers run without systemd (states are unknown and
    # never compared); a host running systemd records what systemctl says.
    with_systemd = os.path.isdir("/run/systemd/system")
    code, result, output = host.take_baseline(config_drift_services=["ssh.service"])
    assert code == 0, output
    assert result["baseline"]["systemd"] is with_systemd
    with open(host.baseline, encoding="utf-8") as handle:
        services = json.load(handle)["services"]
    if with_systemd:
        assert services["ssh.service"]["active"] != "unknown"
    else:
        assert "no running systemd" in output
        assert services == {"ssh.service": {"active": "unknown", "enabled": "unknown"}}
    code, result, output = host.run()
    assert code == 0, output
    assert result["scan"]["drift"] == []


def test_the_shipped_playbook_records_and_scans(host: Host) -> None:
    variables = {
        "drift_hosts": "localhost",
        "config_drift_baseline_path": host.baseline,
        "config_drift_sysctl_root": host.sysctl,
    }
    run = host.ansible.playbook(
        "relops.release.drift_scan",
        "-e",
        json.dumps({**variables, "config_drift_mode": "baseline", "config_drift_files": [host.root]}),
    )
    assert run.returncode == 0, run.report
    assert os.path.exists(host.baseline)
    os.chmod(host.path("app.conf"), 0o600)
    run = host.ansible.playbook("relops.release.drift_scan", "-e", json.dumps(variables))
    assert run.returncode == 0, run.report
    assert "file %s mode: 0600" % host.path("app.conf") in run.output
