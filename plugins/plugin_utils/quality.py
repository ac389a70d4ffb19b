# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test-result quality gate: merge JUnit XML shards and Cobertura coverage,
then judge them against thresholds that depend on the release class.

Everything wrong with the inputs becomes a reason in the decision, never an
exception: a gate always answers, and a deny names every problem at once.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple
from xml.etree.ElementTree import Element, ParseError
from xml.etree.ElementTree import parse as parse_xml

# Reports may come from untrusted CI jobs. The standard library's parser is the one parser (no defusedxml):
# ElementTree never fetches external entities or DTDs (an external entity stays undefined and the document
# is refused), and expat 2.4.1 and newer refuse entity amplification (billion laughs, quadratic blowup).
# tests/unit/test_quality_xml.py holds both attacks. Coverage.py's DOCTYPE line is still accepted.
_UNSAFE_XML = ("undefined entity", "amplification", "external entity")

RELEASE_CLASSES = ("strategic", "operational", "emergency")
POLICY_VERSION = "quality-gate/1"

# Emergency releases may skip the long suites and the coverage floor, but only with a peer review.
DEFAULT_THRESHOLDS: Dict[str, Dict[str, Any]] = {
    "strategic": {
        "min_tests": 1,
        "max_failures": 0,
        "max_errors": 0,
        "min_line_coverage": 80.0,
        "required_suites": ["unit", "integration", "long"],
        "require_peer_review": False,
    },
    "operational": {
        "min_tests": 1,
        "max_failures": 0,
        "max_errors": 0,
        "min_line_coverage": 70.0,
        "required_suites": ["unit", "integration"],
        "require_peer_review": False,
    },
    "emergency": {
        "min_tests": 1,
        "max_failures": 0,
        "max_errors": 0,
        "min_line_coverage": None,
        "required_suites": ["unit"],
        "require_peer_review": True,
    },
}
THRESHOLD_KEYS = tuple(DEFAULT_THRESHOLDS["strategic"])


@dataclass
class SuiteTotals:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    shards: int = 0

    def as_dict(self) -> Dict[str, int]:
        return {
            "tests": self.tests,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
            "shards": self.shards,
        }


@dataclass
class TestResults:
    suites: Dict[str, SuiteTotals] = field(default_factory=dict)
    failed_cases: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    files: List[str] = field(default_factory=list)

    def totals(self) -> SuiteTotals:
        total = SuiteTotals()
        for suite in self.suites.values():
            total.tests += suite.tests
            total.failures += suite.failures
            total.errors += suite.errors
            total.skipped += suite.skipped
        return total


@dataclass
class Coverage:
    lines_covered: int = 0
    lines_valid: int = 0
    problems: List[str] = field(default_factory=list)
    files: List[str] = field(default_factory=list)

    @property
    def percent(self) -> Optional[float]:
        if self.lines_valid == 0:
            return None
        return round(100.0 * self.lines_covered / self.lines_valid, 2)


def thresholds_for(release_class: str, overrides: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The class's default thresholds with the user's overrides for that class on top."""
    if release_class not in RELEASE_CLASSES:
        raise ValueError("release_class %r is not one of %s" % (release_class, ", ".join(RELEASE_CLASSES)))
    chosen = dict(DEFAULT_THRESHOLDS[release_class])
    override = dict((overrides or {}).get(release_class) or {})
    unknown = sorted(set(override) - set(THRESHOLD_KEYS))
    if unknown:
        raise ValueError(
            "thresholds.%s: unknown key(s) %s; use %s" % (release_class, ", ".join(unknown), ", ".join(THRESHOLD_KEYS))
        )
    chosen.update(override)
    return chosen


def expand_paths(patterns: Sequence[str], what: str) -> Tuple[List[str], List[str]]:
    """Files matching each pattern (globs allowed), and a problem for each pattern that matches nothing."""
    files: List[str] = []
    problems: List[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matches:
            problems.append(
                "%s report %s: no such file; check the path or that the CI job kept its artifacts" % (what, pattern)
            )
        files.extend(match for match in matches if match not in files)
    return files, problems


def _read_xml(path: str, what: str) -> Tuple[Optional[Element], Optional[str]]:
    try:
        root = parse_xml(path).getroot()
    except ParseError as exc:
        if any(sign in str(exc) for sign in _UNSAFE_XML):
            return None, "%s report %s was refused as unsafe XML (%s); produce it without entity declarations" % (
                what,
                path,
                exc,
            )
        return None, "%s report %s is not well-formed XML (%s); regenerate it" % (what, path, exc)
    except OSError as exc:
        return None, "%s report %s cannot be read: %s" % (what, path, exc.strerror or exc)
    return root, None


def merge_junit(paths: Sequence[str]) -> TestResults:
    """Merge JUnit XML files: same-named suites across shards add up; a repeated case counts once, worst outcome."""
    files, problems = expand_paths(paths, "junit")
    results = TestResults(problems=problems, files=files)
    cases: Dict[Tuple[str, str, str], str] = {}
    for path in files:
        root, problem = _read_xml(path, "junit")
        if problem is not None or root is None:
            results.problems.append(problem or "junit report %s is empty" % path)
            continue
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        if root.tag not in ("testsuite", "testsuites"):
            results.problems.append(
                "junit report %s has root element <%s>, not <testsuites> or <testsuite>; is it a JUnit report?"
                % (path, root.tag)
            )
            continue
        for suite in suites:
            name = suite.get("name") or os.path.splitext(os.path.basename(path))[0]
            results.suites.setdefault(name, SuiteTotals()).shards += 1
            for case in suite.findall("testcase"):
                key = (name, case.get("classname") or "", case.get("name") or "")
                cases[key] = _worse(cases.get(key), _outcome(case))
    for (suite_name, classname, case_name), outcome in sorted(cases.items()):
        totals = results.suites[suite_name]
        totals.tests += 1
        if outcome == "failure":
            totals.failures += 1
        elif outcome == "error":
            totals.errors += 1
        elif outcome == "skipped":
            totals.skipped += 1
        if outcome in ("failure", "error"):
            results.failed_cases.append("%s: %s.%s (%s)" % (suite_name, classname, case_name, outcome))
    return results


_SEVERITY = {"passed": 0, "skipped": 1, "failure": 2, "error": 3}


def _outcome(case: Element) -> str:
    for outcome in ("error", "failure", "skipped"):
        if case.find(outcome) is not None:
            return outcome
    return "passed"


def _worse(current: Optional[str], new: str) -> str:
    if current is None:
        return new
    return new if _SEVERITY[new] > _SEVERITY[current] else current


def merge_cobertura(paths: Sequence[str]) -> Coverage:
    """Merge Cobertura files line by line: a line is covered when any shard hit it."""
    files, problems = expand_paths(paths, "coverage")
    coverage = Coverage(problems=problems, files=files)
    lines: Dict[Tuple[str, str], bool] = {}
    summed_covered = summed_valid = 0
    for path in files:
        root, problem = _read_xml(path, "coverage")
        if problem is not None or root is None:
            coverage.problems.append(problem or "coverage report %s is empty" % path)
            continue
        if root.tag != "coverage":
            coverage.problems.append(
                "coverage report %s has root element <%s>, not <coverage>; is it a Cobertura report?" % (path, root.tag)
            )
            continue
        found = _cobertura_lines(root)
        if found:
            for key, hit in found.items():
                lines[key] = lines.get(key, False) or hit
            continue
        try:
            summed_covered += int(root.get("lines-covered") or "")
            summed_valid += int(root.get("lines-valid") or "")
        except ValueError:
            coverage.problems.append(
                "coverage report %s has neither <line> elements nor lines-covered/lines-valid attributes" % path
            )
    coverage.lines_covered = summed_covered + sum(1 for hit in lines.values() if hit)
    coverage.lines_valid = summed_valid + len(lines)
    return coverage


def _cobertura_lines(root: Element) -> Dict[Tuple[str, str], bool]:
    found: Dict[Tuple[str, str], bool] = {}
    for klass in root.iter("class"):
        filename = klass.get("filename") or klass.get("name") or ""
        for line in klass.iter("line"):
            key = (filename, line.get("number") or "")
            try:
                hit = int(line.get("hits") or "0") > 0
            except ValueError:
                hit = False
            found[key] = found.get(key, False) or hit
    return found


def judge(
    tests: TestResults,
    coverage: Optional[Coverage],
    thresholds: Mapping[str, Any],
    release_class: str,
    peer_reviewed_by: Optional[str],
    actor_user: str,
) -> List[str]:
    """Every reason to deny; an empty list allows."""
    reasons = list(tests.problems)
    if coverage is not None:
        reasons.extend(coverage.problems)
    totals = tests.totals()
    if totals.tests < int(thresholds["min_tests"]):
        reasons.append(
            "%d test(s) ran, fewer than the %d a %s release needs"
            % (totals.tests, thresholds["min_tests"], release_class)
        )
    if totals.failures > int(thresholds["max_failures"]):
        reasons.append(
            "%d test failure(s), more than the %d allowed: %s"
            % (totals.failures, thresholds["max_failures"], _first(tests.failed_cases))
        )
    if totals.errors > int(thresholds["max_errors"]):
        reasons.append("%d test error(s), more than the %d allowed" % (totals.errors, thresholds["max_errors"]))
    for suite in thresholds["required_suites"] or []:
        if suite not in tests.suites:
            reasons.append(
                "suite %r is required for a %s release but no report has it (suites: %s)"
                % (suite, release_class, ", ".join(sorted(tests.suites)) or "none")
            )
    floor = thresholds["min_line_coverage"]
    if floor is not None:
        percent = coverage.percent if coverage is not None else None
        if percent is None:
            reasons.append(
                "line coverage is required (at least %s%%) for a %s release but no coverage was given"
                % (floor, release_class)
            )
        elif percent < float(floor):
            reasons.append(
                "line coverage %.2f%% is below the %s%% a %s release needs" % (percent, floor, release_class)
            )
    if thresholds["require_peer_review"]:
        if not peer_reviewed_by:
            reasons.append(
                "%s release needs a peer review; set peer_reviewed_by to the reviewer"
                % ("an " + release_class if release_class[0] in "aeiou" else "a " + release_class)
            )
        elif peer_reviewed_by == actor_user:
            reasons.append(
                "peer review by %s does not count: the reviewer must not be the person releasing" % peer_reviewed_by
            )
    return reasons


def _first(cases: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(cases[:limit])
    return shown + (" and %d more" % (len(cases) - limit) if len(cases) > limit else "")


def inputs_digest(files: Sequence[str], settings: Mapping[str, Any]) -> str:
    """A digest of every input the decision read: the reports' bytes and the settings."""
    digests: List[List[Optional[str]]] = []
    for path in files:
        try:
            with open(path, "rb") as handle:
                digests.append([path, hashlib.sha256(handle.read()).hexdigest()])
        except OSError:
            digests.append([path, None])
    document = json.dumps({"files": digests, "settings": settings}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(document.encode("utf-8")).hexdigest()
