# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configuration baselines and drift scans for relops.release.config_baseline / drift_scan.

Target-safe: standard library only. A baseline is one JSON document holding,
for each watched item, the state it must keep:

- files: sha256, owner, group, mode (a directory entry is walked recursively);
- packages: installed version (dpkg-query or rpm), ``None`` when absent;
- services: ``active`` / ``enabled`` as systemctl reports them; without a
  running systemd both are recorded as ``unknown`` and never compared;
- sysctls: the value read from /proc/sys, whitespace collapsed.

File contents are kept in a content-addressed store (``<store>/<sha256>``) so
remediation can restore a changed or deleted file byte for byte.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from typing import Any, Dict, List, Optional, Set, Tuple

from ansible_collections.relops.release.plugins.module_utils.digests import file_digest

FORMAT_VERSION = 1
SMALL_FILE = 1024 * 1024
UNKNOWN = "unknown"

Baseline = Dict[str, Any]
Finding = Dict[str, Any]


class DriftError(ValueError):
    """Input the baseline or scan cannot work with; the message names the value and the fix."""


# ---------------------------------------------------------------- files


def hash_file(path: str) -> str:
    """sha256 of a file; small files in one read (most config files), large ones streamed."""
    with open(path, "rb") as handle:
        data = handle.read(SMALL_FILE + 1)
        if len(data) <= SMALL_FILE:
            return hashlib.sha256(data).hexdigest()
    return file_digest(path)[0]


def _name_of_uid(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _name_of_gid(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def describe_file(path: str, names: Dict[Tuple[str, int], str]) -> Dict[str, Any]:
    """The baseline record of one path: absent, or its checksum, owner, group and mode."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return {"state": "absent"}
    if names.get(("u", info.st_uid)) is None:
        names[("u", info.st_uid)] = _name_of_uid(info.st_uid)
    if names.get(("g", info.st_gid)) is None:
        names[("g", info.st_gid)] = _name_of_gid(info.st_gid)
    record: Dict[str, Any] = {
        "owner": names[("u", info.st_uid)],
        "group": names[("g", info.st_gid)],
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
    }
    if stat.S_ISREG(info.st_mode):
        record["state"] = "file"
        record["sha256"] = hash_file(path)
        record["size"] = info.st_size
    elif stat.S_ISLNK(info.st_mode):
        record["state"] = "link"
        record["target"] = os.readlink(path)
    elif stat.S_ISDIR(info.st_mode):
        record["state"] = "directory"
    else:
        record["state"] = "other"
    return record


def expand_paths(paths: List[str]) -> Tuple[List[str], List[str]]:
    """Absolute file paths to watch, and the directories they came from (walked, sorted)."""
    files: List[str] = []
    roots: List[str] = []
    for path in paths:
        if not os.path.isabs(path):
            raise DriftError("file path %r is relative; give an absolute path such as /etc/app/app.conf" % path)
        if os.path.isdir(path) and not os.path.islink(path):
            roots.append(os.path.normpath(path))
            files.extend(walk_directory(path))
        else:
            files.append(os.path.normpath(path))
    return sorted(dict.fromkeys(files)), roots


def walk_directory(root: str) -> List[str]:
    found: List[str] = []
    for folder, dirnames, filenames in os.walk(root):
        dirnames.sort()
        found.extend(os.path.join(folder, name) for name in filenames)
    return found


def store_copy(store: str, path: str, digest: str) -> bool:
    """Keep a copy of a file's content under its digest; True when a copy was written."""
    target = os.path.join(store, digest)
    if os.path.exists(target):
        return False
    os.makedirs(store, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=store, prefix=".incoming-")
    os.close(handle)
    try:
        shutil.copyfile(path, temporary)
        if hash_file(temporary) != digest:
            # The file changed while we copied it; a copy that does not match would restore the wrong bytes.
            raise DriftError("%s changed while the baseline was taken; take the baseline again" % path)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return True


# ---------------------------------------------------------------- packages, services, sysctls


def package_versions(names: List[str]) -> Dict[str, Optional[str]]:
    """Installed version of each package (dpkg-query, else rpm); None when not installed."""
    if not names:
        return {}
    if shutil.which("dpkg-query"):
        return _dpkg_versions(names)
    if shutil.which("rpm"):
        return _rpm_versions(names)
    raise DriftError("neither dpkg-query nor rpm found on this host; remove the packages from the baseline")


def _dpkg_versions(names: List[str]) -> Dict[str, Optional[str]]:
    versions: Dict[str, Optional[str]] = dict.fromkeys(names)
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\t${Version}\n", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] in versions and parts[1] == "installed":
            versions[parts[0]] = parts[2]
    return versions


def _rpm_versions(names: List[str]) -> Dict[str, Optional[str]]:
    versions: Dict[str, Optional[str]] = {}
    for name in names:
        done = subprocess.run(
            ["rpm", "-q", "--qf", "%{EPOCHNUM}:%{VERSION}-%{RELEASE}\n", name],
            capture_output=True,
            text=True,
            check=False,
        )
        versions[name] = done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else None
    return versions


def systemd_running() -> bool:
    """sd_booted(): systemd is the running init when /run/systemd/system exists."""
    return os.path.isdir("/run/systemd/system") and shutil.which("systemctl") is not None


def service_states(names: List[str]) -> Dict[str, Dict[str, str]]:
    """active/enabled of each unit; 'unknown' for both without a running systemd."""
    if not names:
        return {}
    if not systemd_running():
        return {name: {"active": UNKNOWN, "enabled": UNKNOWN} for name in names}
    states: Dict[str, Dict[str, str]] = {}
    for name in names:
        states[name] = {"active": _systemctl("is-active", name), "enabled": _systemctl("is-enabled", name)}
    return states


def _systemctl(verb: str, name: str) -> str:
    done = subprocess.run(["systemctl", verb, name], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "not-found"


def sysctl_path(root: str, key: str) -> str:
    if not key or key.startswith((".", "/")) or ".." in key:
        raise DriftError("sysctl key %r is not valid; use the dotted form such as net.ipv4.ip_forward" % key)
    return os.path.join(root, key.replace(".", "/"))


def read_sysctl(root: str, key: str) -> Optional[str]:
    try:
        with open(sysctl_path(root, key), encoding="utf-8") as handle:
            return " ".join(handle.read().split())
    except FileNotFoundError:
        return None


def sysctl_values(root: str, keys: List[str]) -> Dict[str, Optional[str]]:
    return {key: read_sysctl(root, key) for key in keys}


# ---------------------------------------------------------------- baseline


def take_baseline(
    paths: List[str],
    packages: List[str],
    services: List[str],
    sysctls: List[str],
    sysctl_root: str = "/proc/sys",
) -> Baseline:
    files, roots = expand_paths(paths)
    names: Dict[Tuple[str, int], str] = {}
    return {
        "format": FORMAT_VERSION,
        "paths": sorted(dict.fromkeys(os.path.normpath(path) for path in paths)),
        "roots": roots,
        "files": {path: describe_file(path, names) for path in files},
        "packages": package_versions(sorted(dict.fromkeys(packages))),
        "services": service_states(sorted(dict.fromkeys(services))),
        "sysctls": sysctl_values(sysctl_root, sorted(dict.fromkeys(sysctls))),
        "sysctl_root": sysctl_root,
    }


def load_baseline(path: str) -> Optional[Baseline]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise DriftError("baseline %s is not valid JSON (%s); take the baseline again" % (path, error)) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        raise DriftError(
            "baseline %s has format %r, expected %d; take the baseline again"
            % (path, document.get("format") if isinstance(document, dict) else None, FORMAT_VERSION)
        )
    return document


def write_json_atomically(path: str, document: Any) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".baseline-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1, sort_keys=True)
            out.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def missing_copies(baseline: Baseline, store: str) -> List[str]:
    """Files whose content the store does not hold yet."""
    return [
        path
        for path, record in baseline["files"].items()
        if record.get("state") == "file" and not os.path.exists(os.path.join(store, record["sha256"]))
    ]


# ---------------------------------------------------------------- scan


def scan(baseline: Baseline) -> List[Finding]:
    """Every difference between the baseline and the host now, in a stable order."""
    findings: List[Finding] = []
    names: Dict[Tuple[str, int], str] = {}
    current_files, _roots = expand_paths(baseline["paths"])
    for path in sorted(set(current_files) | set(baseline["files"])):
        expected = baseline["files"].get(path)
        actual = describe_file(path, names)
        if expected is None:
            findings.append(_finding("file", path, "state", "absent", actual["state"], remediable=False))
            continue
        findings.extend(_file_findings(path, expected, actual))
    current_packages = package_versions(sorted(baseline["packages"]))
    for name, version in sorted(baseline["packages"].items()):
        if current_packages.get(name) != version:
            findings.append(_finding("package", name, "version", version, current_packages.get(name), False))
    current_services = service_states(sorted(baseline["services"]))
    for name, expected_state in sorted(baseline["services"].items()):
        for field in ("active", "enabled"):
            wanted, found = expected_state.get(field), current_services[name].get(field)
            if UNKNOWN in (wanted, found):
                continue
            if wanted != found:
                findings.append(_finding("service", name, field, wanted, found, False))
    root = baseline.get("sysctl_root", "/proc/sys")
    for key, value in sorted(baseline["sysctls"].items()):
        found = read_sysctl(root, key)
        if found != value:
            findings.append(_finding("sysctl", key, "value", value, found, value is not None and found is not None))
    return findings


def _finding(kind: str, name: str, field: str, expected: Any, actual: Any, remediable: bool) -> Finding:
    return {
        "kind": kind,
        "name": name,
        "field": field,
        "expected": expected,
        "actual": actual,
        "remediable": remediable,
    }


def _file_findings(path: str, expected: Dict[str, Any], actual: Dict[str, Any]) -> List[Finding]:
    if expected["state"] != actual["state"]:
        remediable = expected["state"] == "file"
        return [_finding("file", path, "state", expected["state"], actual["state"], remediable)]
    if expected["state"] == "absent":
        return []
    found: List[Finding] = []
    for field in ("sha256", "target", "owner", "group", "mode"):
        if field in expected and expected[field] != actual.get(field):
            remediable = field != "target"
            found.append(_finding("file", path, field, expected[field], actual.get(field), remediable))
    return found


def render_lines(findings: List[Finding], side: str) -> str:
    """One side (expected = baseline, actual = host) of the drift as diff text."""
    lines = []
    for item in findings:
        lines.append("%s %s %s: %s" % (item["kind"], item["name"], item["field"], _show(item[side])))
    return "\n".join(lines) + ("\n" if lines else "")


def _show(value: Any) -> str:
    return "(absent)" if value is None else str(value)


# ---------------------------------------------------------------- remediation


def remediate(baseline: Baseline, findings: List[Finding], store: str) -> Tuple[List[Finding], List[Finding]]:
    """Put back what the baseline says for each remediable finding.

    Returns (fixed, left): content is restored first (atomically, from the
    store), then owner/group/mode, so a restored file ends with the baseline's
    metadata. Packages, services and files new since the baseline are left for
    the package/service modules or a person to decide.
    """
    fixed: List[Finding] = []
    left: List[Finding] = []
    restored: Set[str] = set()
    root = baseline.get("sysctl_root", "/proc/sys")
    for item in findings:
        if not item["remediable"]:
            left.append(item)
            continue
        if item["kind"] == "sysctl":
            with open(sysctl_path(root, item["name"]), "w", encoding="utf-8") as handle:
                handle.write(str(item["expected"]) + "\n")
            fixed.append(item)
            continue
        path = item["name"]
        record = baseline["files"][path]
        if item["field"] in ("state", "sha256"):
            if path not in restored:
                restore_content(store, path, record)
                restored.add(path)
            fixed.append(item)
        elif path in restored:
            fixed.append(item)
        else:
            apply_metadata(path, record)
            fixed.append(item)
    return fixed, left


def restore_content(store: str, path: str, record: Dict[str, Any]) -> None:
    source = os.path.join(store, record["sha256"])
    if not os.path.exists(source):
        raise DriftError(
            "no stored copy of %s (sha256 %s) under %s; take the baseline with store_content enabled"
            % (path, record["sha256"], store)
        )
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".%s.relops-" % os.path.basename(path))
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        apply_metadata(temporary, record)
        if os.path.isdir(path) and not os.path.islink(path):
            raise DriftError("%s is now a directory; remove it by hand, then remediate again" % path)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def apply_metadata(path: str, record: Dict[str, Any]) -> None:
    os.chown(path, _uid_of(record["owner"]), _gid_of(record["group"]), follow_symlinks=False)
    if not os.path.islink(path):
        os.chmod(path, int(record["mode"], 8))


def _uid_of(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise DriftError("user %r of the baseline does not exist on this host; create it first" % name) from None


def _gid_of(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        if name.isdigit():
            return int(name)
        raise DriftError("group %r of the baseline does not exist on this host; create it first" % name) from None
