# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a report (report.py's data shape) as static HTML with inline SVG charts, Markdown or JSON.

The HTML needs nothing from the network: styles are inline, and charts are SVG
drawn by pygal without its JavaScript (tooltips are SVG titles).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, List, Mapping, Optional

from ansible_collections.relops.release.plugins.plugin_utils.ledger import LedgerError

try:
    import pygal
    from pygal.style import CleanStyle

    HAS_PYGAL = True
except ImportError:
    HAS_PYGAL = False

try:
    from jinja2 import Environment

    HAS_JINJA2 = True
except ImportError:
    HAS_JINJA2 = False

FORMATS = ("html", "md", "json")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ report.title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1200px; }
h1 { border-bottom: 2px solid #446; padding-bottom: .3rem; }
h2 { margin-top: 2rem; color: #335; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #bbc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef; }
td.empty { color: #777; font-style: italic; }
figure { margin: .5rem 0 1rem; }
figure svg { max-width: 100%; height: auto; }
.meta { color: #666; font-size: .85rem; }
</style>
</head>
<body>
<h1>{{ report.title }}</h1>
<p class="meta">relops.release report <code>{{ report.report }}</code>, {{ report.covers }}</p>
{% for section in report.sections %}
<section class="report-section">
<h2>{{ section.heading }}</h2>
{% for paragraph in section.text %}<p>{{ paragraph }}</p>
{% endfor %}
{% if section.chart %}<figure class="chart" data-chart="{{ loop.index }}">{{ charts[loop.index0] | safe }}</figure>
{% endif %}
{% if section.table %}<table class="report-table">
<thead><tr>{% for column in section.table.columns %}<th>{{ column }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in section.table.rows %}<tr>{% for cell in row %}<td>{{ "" if cell is none else cell }}</td>
{%- endfor %}</tr>
{% else %}<tr><td class="empty" colspan="{{ section.table.columns | length }}">none</td></tr>
{% endfor %}</tbody>
</table>
{% endif %}
</section>
{% endfor %}
</body>
</html>
"""


def render(document: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=True, default=str) + "\n"
    if fmt == "md":
        return markdown(document)
    if fmt == "html":
        return page(document)
    raise LedgerError("report format %r is not one of %s" % (fmt, ", ".join(FORMATS)))


def page(document: Mapping[str, Any]) -> str:
    if not HAS_JINJA2:
        raise LedgerError("HTML reports need jinja2 on the controller; install it (pip install jinja2)")
    charts = [
        svg(section["chart"], "chart-%d" % index) if section.get("chart") else ""
        for index, section in enumerate(document["sections"], 1)
    ]
    template = Environment(autoescape=True).from_string(_PAGE)
    return template.render(report=document, charts=charts)


def svg(chart: Mapping[str, Any], chart_id: str) -> str:
    """One chart as an inline SVG element (no XML declaration, no script, same bytes for the same data)."""
    if not HAS_PYGAL:
        raise LedgerError("report charts need pygal on the controller; install it (pip install pygal)")
    kind = pygal.Bar if chart["type"] == "bar" else pygal.Line
    drawing = kind(
        style=CleanStyle,
        js=[],
        disable_xml_declaration=True,
        width=900,
        height=360,
        x_label_rotation=30 if len(chart["labels"]) > 8 else 0,
        show_minor_x_labels=len(chart["labels"]) <= 16,
        title=chart["title"],
        print_values=False,
        allow_interruptions=True,
        no_data_text="no data",
    )
    drawing.x_labels = [str(label) for label in chart["labels"]]
    for name, values in chart["series"].items():
        drawing.add(str(name), [None if value is None else float(value) for value in values])
    rendered = drawing.render(is_unicode=True)
    # pygal names each chart with a random UUID and dates its comment; fix both so reruns are idempotent.
    rendered = _COMMENT.sub("", rendered.replace("chart-" + str(drawing.uuid), chart_id))
    return _without_scripts(rendered)


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _without_scripts(text: str) -> str:
    """pygal writes its config in an inline <script> even with js=[]; a static report needs none."""
    while "<script" in text:
        start = text.index("<script")
        end = text.index("</script>", start) + len("</script>")
        text = text[:start] + text[end:]
    return text


def markdown(document: Mapping[str, Any]) -> str:
    lines: List[str] = [
        "# %s" % document["title"],
        "",
        "_relops.release report `%s`, %s_" % (document["report"], document["covers"]),
        "",
    ]
    for section in document["sections"]:
        lines.extend(["## %s" % section["heading"], ""])
        for paragraph in section.get("text", []):
            lines.extend([paragraph, ""])
        chart = section.get("chart")
        if chart:
            lines.extend(_chart_table(chart))
        table = section.get("table")
        if table:
            lines.extend(_table(table["columns"], table["rows"]))
    return "\n".join(lines).rstrip() + "\n"


def _chart_table(chart: Mapping[str, Any]) -> List[str]:
    """Markdown has no charts: the chart's numbers as a table under its title."""
    columns = ["period", *chart["series"]]
    rows = [
        [label, *(chart["series"][name][index] for name in chart["series"])]
        for index, label in enumerate(chart["labels"])
    ]
    return ["**%s**" % chart["title"], "", *_table(columns, rows)]


def _table(columns: List[str], rows: List[List[Any]]) -> List[str]:
    out = ["| " + " | ".join(_cell(column) for column in columns) + " |", "|" + "---|" * len(columns)]
    if not rows:
        out.append("| " + " | ".join(["none", *[""] * (len(columns) - 1)]) + " |")
    out.extend("| " + " | ".join(_cell(value) for value in row) + " |" for row in rows)
    return [*out, ""]


def _cell(value: Optional[Any]) -> str:
    if value is None:
        return ""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")


def output_name(report: str, fmt: str) -> str:
    return "%s.%s" % (report, fmt)
