# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exports of an analysed plan: iCalendar for calendar tools, Markdown and HTML for roadmap reviews.

Every export is a pure function of the analysis and ``stamp`` (the iCalendar DTSTAMP), so writing
the same plan twice produces the same bytes and the task reports no change.
"""

from __future__ import annotations

import datetime
import os
import re
from typing import Any, Dict, List, Optional, Tuple

import jinja2

from .analysis import Analysis
from .plan import require_library

try:
    import icalendar

    HAS_ICALENDAR = True
except ImportError:  # reported when the iCalendar export is asked for
    HAS_ICALENDAR = False

PRODID = "-//relops.release//release plan//EN"

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


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


def _environment(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=autoescape,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def to_markdown(analysis: Analysis) -> str:
    env = _environment(autoescape=False)
    env.filters["md"] = _markdown_text
    return env.get_template("roadmap.md.j2").render(**_context(analysis))


def to_html(analysis: Analysis) -> str:
    return _environment(autoescape=True).get_template("roadmap.html.j2").render(**_context(analysis))


def to_ical(analysis: Analysis, stamp: datetime.datetime) -> bytes:
    """One VEVENT per release window, milestone, vendor delivery and compliance deadline."""
    require_library(HAS_ICALENDAR, "icalendar", "the iCalendar export (ical_dest)")
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
            calendar,
            "%s@relops.release" % release.id,
            "%s: %s" % (release.id, release.title),
            (release.start, release.end),
            stamp,
            "\n".join(description),
            [release.klass, release.business_unit],
        )
        for index, milestone in enumerate(release.milestones):
            _add_event(
                calendar,
                "%s.milestone.%d@relops.release" % (release.id, index),
                "%s: %s" % (release.id, milestone.name),
                (milestone.at, None),
                stamp,
                "Milestone",
                ["milestone"],
            )
        for index, vendor in enumerate(release.vendors):
            _add_event(
                calendar,
                "%s.vendor.%d@relops.release" % (release.id, index),
                "%s: %s delivers %s" % (release.id, vendor.vendor, vendor.delivery or "its delivery"),
                (vendor.at, None),
                stamp,
                "Vendor delivery",
                ["vendor"],
            )
        for item in release.scope:
            if item.limit is None:
                continue
            # A bare deadline date is an all-day event on that day (its limit is the following midnight).
            day = item.limit - datetime.timedelta(days=1) if item.deadline and len(item.deadline) == 10 else item.limit
            _add_event(
                calendar,
                "%s.deadline.%s@relops.release" % (release.id, item.id),
                "%s deadline: %s" % (item.id, item.title),
                (day, None),
                stamp,
                "Compliance deadline carried by %s" % release.id,
                ["compliance"],
            )
    return bytes(calendar.to_ical())


def _add_event(
    calendar: Any,
    uid: str,
    summary: str,
    span: Tuple[datetime.datetime, Optional[datetime.datetime]],
    stamp: datetime.datetime,
    description: str,
    categories: List[str],
) -> None:
    start, end = span
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
