# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention policy: what relops.release.archive may move out, what it keeps, and why.

The policy is evaluated whole before anything moves: every candidate (a
release package with its side files, a closed audit segment, a report file)
gets one decision (archive, keep or hold) with a reason. Releases the ledger
says are deployed, or are the rollback target, are never archived: a policy
that would select one is refused as a whole (:class:`RetentionRefused`),
naming each release and the fix.
"""

from __future__ import annotations

import datetime
import fnmatch
import functools
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.relops.release.plugins.module_utils.timestamps import parse_timestamp
from ansible_collections.relops.release.plugins.module_utils.versions import VersionError, check_version
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.versioning import compare
from ansible_collections.relops.release.plugins.plugin_utils.audit.canonical import line_hash, parse_line
from ansible_collections.relops.release.plugins.plugin_utils.audit.trail import ROTATED_SUFFIX, trail_files

KINDS = ("artifact", "audit", "report")
_PACKAGE = re.compile(
    r"^(?P<name>[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)-(?P<version>[0-9].*)\.(?P<ext>tar\.gz|tar\.zst)$"
)
_TAIL_BYTES = 1 << 20


class RetentionError(ValueError):
    """A policy or source that cannot be used; the message names the value and the fix."""


class RetentionRefused(RetentionError):
    """The policy would archive a deployed release or a rollback target."""

    def __init__(self, message: str, refused: List[Dict[str, Any]]) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class Hold:
    """A legal hold: every given field must match (service, version, a glob over the item's paths)."""

    reason: str
    service: Optional[str] = None
    version: Optional[str] = None
    path: Optional[str] = None

    def matches(self, candidate: "Candidate") -> bool:
        if self.service is not None and candidate.service != self.service:
            return False
        if self.version is not None and candidate.version != self.version:
            return False
        if self.path is not None:
            return any(fnmatch.fnmatchcase(name, self.path) for name in candidate.files)
        return True

    def describe(self) -> str:
        parts = ["%s %s" % (name, value) for name, value in self.fields() if value is not None]
        return "legal hold (%s): %s" % (", ".join(parts), self.reason)

    def fields(self) -> List[Tuple[str, Optional[str]]]:
        return [("service", self.service), ("version", self.version), ("path", self.path)]


@dataclass
class Policy:
    keep_last: int
    keep_days: int
    holds: List[Hold] = field(default_factory=list)
    scheme: str = "semver"


@dataclass
class Candidate:
    """One thing that may be archived: its files move together (a package and its envelope)."""

    kind: str
    files: List[str]
    source: str
    moment: datetime.datetime
    service: Optional[str] = None
    version: Optional[str] = None
    group: str = ""
    first_seq: Optional[int] = None
    last_seq: Optional[int] = None
    last_hash: Optional[str] = None

    @property
    def path(self) -> str:
        return self.files[0]

    def describe(self) -> Dict[str, Any]:
        shown: Dict[str, Any] = {"kind": self.kind, "path": self.path, "files": list(self.files)}
        if self.service is not None:
            shown.update(service=self.service, version=self.version)
        if self.kind == "audit":
            shown.update(first_seq=self.first_seq, last_seq=self.last_seq, last_hash=self.last_hash)
        return shown


@dataclass
class Decision:
    candidate: Candidate
    action: str  # archive, keep or hold
    reason: str
    protected: List[str] = field(default_factory=list)

    def describe(self) -> Dict[str, Any]:
        shown = self.candidate.describe()
        shown["reason"] = self.reason
        if self.protected:
            shown["protected"] = list(self.protected)
        return shown


@dataclass
class Plan:
    decisions: List[Decision]

    def of(self, action: str) -> List[Decision]:
        return [decision for decision in self.decisions if decision.action == action]


def parse_policy(options: Mapping[str, Any], scheme: str = "semver") -> Policy:
    """Build a policy from the task's ``policy`` option, refusing values that make no sense."""
    keep_last, keep_days = int(options.get("keep_last", 3)), int(options.get("keep_days", 30))
    if keep_last < 1:
        raise RetentionError(
            "policy.keep_last %d must be at least 1: the newest release of each service is always kept" % keep_last
        )
    if keep_days < 0:
        raise RetentionError("policy.keep_days %d must be 0 or more (0 keeps nothing for its age)" % keep_days)
    holds = []
    for index, hold in enumerate(options.get("holds") or []):
        made = Hold(
            reason=str(hold.get("reason") or ""),
            service=hold.get("service"),
            version=hold.get("version"),
            path=hold.get("path"),
        )
        if not any(value is not None for _name, value in made.fields()):
            raise RetentionError(
                "policy.holds[%d] names nothing to hold; give a service, a version and/or a path glob" % index
            )
        if not made.reason.strip():
            raise RetentionError(
                "policy.holds[%d] has no reason; a legal hold must say why (the case or request it serves)" % index
            )
        holds.append(made)
    return Policy(keep_last=keep_last, keep_days=keep_days, holds=holds, scheme=scheme)


def find_artifacts(directory: str, scheme: str = "semver") -> List[Candidate]:
    """Release packages in an artifact directory, each with its side files (``<package>.*``)."""
    names = _list_directory(directory, "artifact directory")
    candidates = []
    for name in names:
        parsed = parse_package_name(name, scheme)
        path = os.path.join(directory, name)
        if parsed is None or not os.path.isfile(path):
            continue
        sidecars = sorted(
            os.path.join(directory, other)
            for other in names
            if other.startswith(name + ".") and os.path.isfile(os.path.join(directory, other))
        )
        candidates.append(
            Candidate(
                kind="artifact",
                files=[path, *sidecars],
                source=directory,
                moment=_mtime(path),
                service=parsed[0],
                version=parsed[1],
                group=parsed[0],
            )
        )
    return candidates


def parse_package_name(name: str, scheme: str = "semver") -> Optional[Tuple[str, str]]:
    """(service, version) of a package file named ``<service>-<version>.<tar.gz|tar.zst>``, else None."""
    matched = _PACKAGE.match(name)
    if matched is None:
        return None
    stem = name[: -len(matched.group("ext")) - 1]
    # A service name may hold dashes and digits: take the first split whose right side is a version.
    for at, char in enumerate(stem):
        if char != "-":
            continue
        service, version = stem[:at], stem[at + 1 :]
        try:
            check_version(version, scheme)
        except VersionError:
            continue
        return service, version
    return None


def find_audit_segments(trail: str) -> Tuple[List[Candidate], List[Dict[str, Any]]]:
    """Closed (rotated) segments of an audit trail, and the ones that must stay with why.

    The live file is never a candidate. When it is missing or empty the newest
    rotated segment holds the chain's head (the next writer continues from its
    last line), so that segment stays too.
    """
    path = os.path.abspath(trail)
    rotated = [name for name in trail_files(path) if name != path]
    kept: List[Dict[str, Any]] = []
    live_empty = not os.path.exists(path) or os.path.getsize(path) == 0
    if live_empty and rotated:
        kept.append(
            {
                "kind": "audit",
                "path": rotated[-1],
                "reason": "holds the chain head: the live trail %s is missing or empty" % path,
            }
        )
        rotated = rotated[:-1]
    candidates = []
    for name in rotated:
        segment = read_segment(name)
        if isinstance(segment, str):
            kept.append({"kind": "audit", "path": name, "reason": segment})
            continue
        first_seq, last_seq, last_hash, last_ts = segment
        candidates.append(
            Candidate(
                kind="audit",
                files=[name],
                source=os.path.dirname(path),
                moment=last_ts or _mtime(name),
                group=path,
                first_seq=first_seq,
                last_seq=last_seq,
                last_hash=last_hash,
            )
        )
    return candidates, kept


def read_segment(path: str) -> "Tuple[int, int, str, Optional[datetime.datetime]] | str":
    """First seq, last seq, last line's hash and time of a closed segment; or why it is not one."""
    with open(path, "rb") as handle:
        first = handle.readline()
        size = os.fstat(handle.fileno()).st_size
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
    if not first or not tail.endswith(b"\n"):
        return "not a closed segment (empty, or ends mid-line): verify the trail with relops.release.audit_verify"
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    try:
        head, end = parse_line(first.rstrip(b"\n")), parse_line(last)
        first_seq, last_seq = int(head["seq"]), int(end["seq"])
    except (ValueError, KeyError, TypeError):
        return "its first or last line is not an audit event: verify the trail with relops.release.audit_verify"
    try:
        moment: Optional[datetime.datetime] = parse_timestamp(str(end.get("ts", "")))
    except ValueError:
        moment = None
    return first_seq, last_seq, line_hash(last), moment


def find_reports(directory: str) -> List[Candidate]:
    """Report files under a directory (any depth), grouped by file name (one report's editions)."""
    _list_directory(directory, "report directory")
    candidates = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue  # temporary files of a writer at work
            path = os.path.join(root, name)
            candidates.append(Candidate(kind="report", files=[path], source=directory, moment=_mtime(path), group=name))
    return candidates


def evaluate(
    candidates: Sequence[Candidate],
    policy: Policy,
    protected: Sequence[Mapping[str, Any]],
    now: datetime.datetime,
) -> Plan:
    """Decide every candidate; raise :class:`RetentionRefused` when a protected release would be archived."""
    ranks = _ranks(candidates, policy.scheme)
    cutoff = now - datetime.timedelta(days=policy.keep_days)
    guards = _guards(protected)
    decisions = []
    for candidate in candidates:
        roles = guards.get((candidate.service, candidate.version), []) if candidate.kind == "artifact" else []
        decisions.append(_decide(candidate, policy, ranks, cutoff, roles))
    refuse_protected(decisions, ranks, policy)
    return Plan(decisions)


def _decide(
    candidate: Candidate,
    policy: Policy,
    ranks: Mapping[int, Tuple[int, str]],
    cutoff: datetime.datetime,
    roles: List[str],
) -> Decision:
    for hold in policy.holds:
        if hold.matches(candidate):
            return Decision(candidate, "hold", hold.describe(), roles)
    rank = ranks.get(id(candidate))
    if rank is not None and rank[0] <= policy.keep_last:
        return Decision(candidate, "keep", "%s (keep_last %d)" % (rank[1], policy.keep_last), roles)
    if candidate.moment > cutoff:
        return Decision(candidate, "keep", "newer than %d days (keep_days)" % policy.keep_days, roles)
    why = "older than %d days" % policy.keep_days
    if rank is not None:
        why += " and not %s" % _rank_words(candidate, policy.keep_last)
    return Decision(candidate, "archive", why, roles)


def _rank_words(candidate: Candidate, count: int) -> str:
    if candidate.kind == "artifact":
        return "among the newest %d releases of %s" % (count, candidate.service)
    return "among the newest %d editions of report %s" % (count, candidate.group)


def _ranks(candidates: Sequence[Candidate], scheme: str) -> Dict[int, Tuple[int, str]]:
    """Each artifact's rank among its service's versions (newest first) and each report's among its editions."""
    ranks: Dict[int, Tuple[int, str]] = {}
    versions: Dict[str, List[str]] = {}
    for candidate in candidates:
        if candidate.kind == "artifact" and candidate.service is not None and candidate.version is not None:
            known = versions.setdefault(candidate.service, [])
            if candidate.version not in known:
                known.append(candidate.version)

    def precedence(left: str, right: str) -> int:
        return compare(left, right, scheme)

    order = {
        service: sorted(known, key=functools.cmp_to_key(precedence), reverse=True)
        for service, known in versions.items()
    }
    editions: Dict[str, List[Candidate]] = {}
    for candidate in candidates:
        if candidate.kind == "artifact" and candidate.service in order:
            place = order[candidate.service].index(str(candidate.version)) + 1
            ranks[id(candidate)] = (place, "release #%d of %s by version precedence" % (place, candidate.service))
        elif candidate.kind == "report":
            editions.setdefault(candidate.group, []).append(candidate)
    for name, files in editions.items():
        for place, candidate in enumerate(sorted(files, key=lambda item: (item.moment, item.path), reverse=True), 1):
            ranks[id(candidate)] = (place, "edition #%d of report %s, newest first" % (place, name))
    return ranks


def _guards(protected: Sequence[Mapping[str, Any]]) -> Dict[Tuple[Optional[str], Optional[str]], List[str]]:
    guards: Dict[Tuple[Optional[str], Optional[str]], List[str]] = {}
    for entry in protected:
        guards.setdefault((entry["service"], entry["version"]), []).append(
            "%s in %s" % (entry["role"], entry["environment"])
        )
    return guards


def refuse_protected(decisions: Iterable[Decision], ranks: Mapping[int, Tuple[int, str]], policy: Policy) -> None:
    """Raise when any decision would archive a deployed release or a rollback target, naming each and the fix."""
    refused: List[Dict[str, Any]] = []
    for decision in decisions:
        if decision.action != "archive" or not decision.protected:
            continue
        candidate = decision.candidate
        rank = ranks.get(id(candidate), (policy.keep_last + 1, ""))[0]
        refused.append(
            {
                "service": candidate.service,
                "version": candidate.version,
                "path": candidate.path,
                "protected": list(decision.protected),
                "keep_last_needed": rank,
            }
        )
    if not refused:
        return
    lines = [
        "%s %s (%s), %s" % (entry["service"], entry["version"], entry["path"], " and ".join(entry["protected"]))
        for entry in refused
    ]
    needed = max(entry["keep_last_needed"] for entry in refused)
    holds = ", ".join(
        "{service: %s, version: %s, reason: ...}" % (entry["service"], entry["version"]) for entry in refused
    )
    raise RetentionRefused(
        "retention policy refused, nothing was archived. It would archive %s. A deployed release and its rollback"
        " target are never archived. Fix: raise policy.keep_last to %d (from %d), or add a hold to policy.holds: %s"
        % ("; ".join(lines), needed, policy.keep_last, holds),
        refused,
    )


def _list_directory(directory: str, what: str) -> List[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        raise RetentionError("%s %s does not exist; check the path" % (what, directory)) from None
    except NotADirectoryError:
        raise RetentionError(
            "%s %s is not a directory; give the directory that holds the files" % (what, directory)
        ) from None


def _mtime(path: str) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc)


def rotated_name(path: str) -> bool:
    """Whether a file name is a rotated audit segment's (``<trail>.<UTC time>``)."""
    return ROTATED_SUFFIX.search(path) is not None
