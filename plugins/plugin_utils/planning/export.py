# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exports of an analysed plan: iCalendar for calendar tools, Markdown and HTML for roadmap reviews.

Every export is a pure function of the analysis and ``stamp`` (the iCalendar DTSTAMP), so writing
the same plan twice produces the same bytes and the task reports no change.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, List

import icalendar
import jinja2

from .analysis import Analysis

PRODID = "-//relops.release//release plan//EN"

_MARKDOWN = """# {{ plan.name }}

{{ plan.releases | length }} releases; findings: {% for kind, count in counts.items() %}{{ kind }} {{ count }}{{ ", " if not loop.last }}{% else %}none{% endfor %}.

## Roadmap
{% for quarter, items in quarters %}
### {{ quarter }}

| release | class | business unit | window | depends on | approvals |
|---|---|---|---|---|---|
{% for r in items -%}
| {{ r.id | md }} — {{ r.title | md }} | {{ r.class }} | {{ r.business_unit | md }} | {{ r.start[:10] }} to {{ r.last_day }}{% if r.feasible_start != r.start %} (feasible {{ r.feasible_start[:10] }}){% endif %} | {{ r.depends_on | join(", ") | md }} | {{ r.governance.approvals | join(", ") | md }} |
{% endfor %}
{%- endfor %}

## Findings
{% for f in findings %}
- **{{ f.severity }}** `{{ f.kind }}`: {{ f.message | md }}
{%- else %}
No findings.
{%- endfor %}

## What moves
{% for m in moves %}
- {{ m.release }}: {{ m.start[:10] }} to {{ m.new_start[:10] }} (+{{ m.days }} days) because of {{ m.because | join(", ") | md }}
{%- else %}
Nothing moves.
{%- endfor %}

## Dependency order

{{ order | join(" → ") }}
"""

_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ plan.name }}</title>
<style>
body { font-family: sans-serif; margin: 2em; } table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: .3em .6em; text-align: left; }
.error { color: #a00; } .warning { color: #a60; }
</style></head>
<body>
<h1>{{ plan.name }}</h1>
<p>{{ plan.releases | length }} releases.</p>
<h2>Roadmap</h2>
{% for quarter, items in quarters %}
<h3>{{ quarter }}</h3>
<table>
<tr><th>release</th><th>class</th><th>business unit</th><th>window</th><th>depends on</th><th>approvals</th></tr>
{% for r in items %}<tr><td>{{ r.id }} — {{ r.title }}</td><td>{{ r.class }}</td><td>{{ r.business_unit }}</td>
<td>{{ r.start[:10] }} to {{ r.last_day }}{% if r.feasible_start != r.start %} (feasible {{ r.feasible_start[:10] }}){% endif %}</td>
<td>{{ r.depends_on | join(", ") }}</td><td>{{ r.governance.approvals | join(", ") }}</td></tr>
{% endfor %}</table>
{% endfor %}
<h2>Findings</h2>
<ul>
{% for f in findings %}<li class="{{ f.severity }}"><strong>{{ f.severity }}</strong> <code>{{ f.kind }}</code>: {{ f.message }}</li>
{% else %}<li>No findings.</li>
{% endfor %}</ul>
<h2>What moves</h2>
<ul>
{% for m in moves %}<li>{{ m.release }}: {{ m.start[:10] }} to {{ m.new_start[:10] }} (+{{ m.days }} days) because of {{ m.because | join(", ") }}</li>
{% else %}<li>Nothing moves.</li>
{% endfor %}</ul>
<h2>Dependency order</h2>
<p>{{ order | join(" → ") }}</p>
</body>
</html>
"""


def _markdown_text(value: Any) -> str:
    # Table cells and list items must not break the Markdown structure.
    return re.sub(r"([|*_`\\\[\]<>])", r"\\\1", str(value)).replace("\n", " ")


def _context(analysis: Analysis) -> Dict[str, Any]:
    data = analysis.as_dict()
    quarters: Dict[str, List[Dict[str, Any]]] = {}
    for release in sorted(data["releases"], key=lambda r: (r["quarter"], r["start"], r["id"])):
        quarters.setdefault(release["quarter"], []).append(release)
    return {
        "plan": data,
        "quarters": sorted(quarters.items()),
        "findings": data["findings"],
        "moves": data["moves"],
        "order": data["order"],
        "counts": data["counts"],
    }


def to_markdown(analysis: Analysis) -> str:
    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["md"] = _markdown_text
    return env.from_string(_MARKDOWN).render(**_context(analysis))


def to_html(analysis: Analysis) -> str:
    env = jinja2.Environment(autoescape=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_HTML).render(**_context(analysis))


def to_ical(analysis: Analysis, stamp: datetime.datetime) -> bytes:
    """One VEVENT per release window, milestone, vendor delivery and compliance deadline."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", analysis.plan.name)
    findings: Dict[str, List[str]] = {}
    for finding in analysis.findings:
        for rid in finding.releases:
            findings.setdefault(rid, []).append("%s: %s" % (finding.severity, finding.message))
    for release in analysis.plan.releases:
        rules = analysis.rigor[release.id]
        description = [
            "Class: %s; quarter %s; business unit %s" % (release.klass, release.quarter, release.business_unit),
            "Approvals: %s" % ", ".join(rules["approvals"]),
            "Stakeholders: %s" % ", ".join(rules["stakeholders"]),
        ]
        if release.depends_on:
            description.append("Depends on: %s" % ", ".join(release.depends_on))
        if release.cis:
            description.append("CIs: %s" % ", ".join(release.cis))
        description.extend(findings.get(release.id, []))
        _add_event(
            calendar, "%s@relops.release" % release.id, "%s: %s" % (release.id, release.title),
            release.start, release.end, stamp, "\n".join(description), [release.klass, release.business_unit],
        )
        for index, milestone in enumerate(release.milestones):
            _add_event(
                calendar, "%s.milestone.%d@relops.release" % (release.id, index),
                "%s: %s" % (release.id, milestone.name), milestone.at, None, stamp, "Milestone", ["milestone"],
            )
        for index, vendor in enumerate(release.vendors):
            _add_event(
                calendar, "%s.vendor.%d@relops.release" % (release.id, index),
                "%s: %s delivers %s" % (release.id, vendor.vendor, vendor.delivery or "its delivery"),
                vendor.at, None, stamp, "Vendor delivery", ["vendor"],
            )
        for item in release.scope:
            if item.limit is not None:
                _add_event(
                    calendar, "%s.deadline.%s@relops.release" % (release.id, item.id),
                    "%s deadline: %s" % (item.id, item.title), item.limit - datetime.timedelta(days=1)
                    if item.deadline and len(item.deadline) == 10 else item.limit,
                    None, stamp, "Compliance deadline carried by %s" % release.id, ["compliance"],
                )
    return bytes(calendar.to_ical())


def _add_event(
    calendar: icalendar.Calendar,
    uid: str,
    summary: str,
    start: datetime.datetime,
    end: Any,
    stamp: datetime.datetime,
    description: str,
    categories: List[str],
) -> None:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("summary", summary)
    if end is None and start.time() == datetime.time(0):
        # A date without a time is an all-day event (RFC 5545 VALUE=DATE).
        event.add("dtstart", start.date())
    else:
        event.add("dtstart", start)
        if end is not None:
            event.add("dtend", end)
    event.add("description", description)
    event.add("categories", [category for category in categories if category])
    calendar.add_component(event)
