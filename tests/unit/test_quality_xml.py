"""The quality gate's XML reading against hostile reports (issue 22): the standard library's parser is the
documented defence (no defusedxml), so these attacks must stay refused with it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from ansible_collections.relops.release.plugins.plugin_utils.quality import merge_cobertura, merge_junit

SECRET = "top-secret-line-%d" % time.monotonic_ns()

XXE = """<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY xxe SYSTEM "file://{path}">]>
<testsuite name="unit" tests="1"><testcase classname="a" name="{attribute}"><failure>{text}</failure></testcase>
</testsuite>
"""

LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol0 "lololololololololololololololololololol">\n'
    + "".join(' <!ENTITY lol%d "%s">\n' % (i, ("&lol%d;" % (i - 1)) * 10) for i in range(1, 10))
    + ']>\n<testsuite name="&lol9;" tests="1"><testcase classname="a" name="b"/></testsuite>\n'
)

COVERAGE_PY = """<?xml version="1.0" ?>
<!DOCTYPE coverage SYSTEM "https://cobertura.sourceforge.net/xml/coverage-04.dtd">
<coverage version="7.4" line-rate="0.5" lines-covered="1" lines-valid="2">
  <packages><package name="app"><classes><class name="m.py" filename="app/m.py">
    <lines><line number="1" hits="1"/><line number="2" hits="0"/></lines>
  </class></classes></package></packages>
</coverage>
"""


@pytest.mark.parametrize(("attribute", "text"), [("&xxe;", "x"), ("b", "&xxe;")], ids=["attribute", "text"])
def test_an_external_entity_is_never_read_and_the_report_is_refused(tmp_path: Any, attribute: str, text: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    report = tmp_path / "junit.xml"
    report.write_text(XXE.format(path=secret, attribute=attribute, text=text))
    results = merge_junit([str(report)])
    assert results.suites == {} and len(results.problems) == 1, results
    assert "refused as unsafe XML" in results.problems[0] and "entity" in results.problems[0], results.problems
    assert SECRET not in repr(results)


def test_a_billion_laughs_report_is_refused_quickly(tmp_path: Any) -> None:
    report = tmp_path / "junit.xml"
    report.write_text(LAUGHS)
    started = time.monotonic()
    results = merge_junit([str(report)])
    assert time.monotonic() - started < 5, "the expansion was refused, not computed"
    assert results.suites == {} and "refused as unsafe XML" in results.problems[0], results.problems
    assert "amplification" in results.problems[0]


def test_coverage_py_reports_with_their_doctype_still_merge(tmp_path: Any) -> None:
    report = tmp_path / "coverage.xml"
    report.write_text(COVERAGE_PY)
    coverage = merge_cobertura([str(report)])
    assert coverage.problems == [] and (coverage.lines_covered, coverage.lines_valid) == (1, 2)
