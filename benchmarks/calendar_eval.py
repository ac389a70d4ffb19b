"""Blackout calendar evaluation (issue 5), against a bare recurring-ical-events expansion in the same run.

The calendar holds five years of weekly Friday-to-Monday freezes (one VEVENT each, as calendar exports
write them) plus yearly holidays (all-day RRULE:FREQ=YEARLY events) in Europe/Berlin. Each evaluation
asks the full blackout_check question at a random moment of those five years: in a blackout now, which
blackouts a four-hour planned window the next day overlaps, and the next allowed start (searching
366 days ahead). The baseline is what the evaluator cannot avoid: recurring-ical-events expanding the
same calendar over the same span (now to the horizon), with no end computation, merging or search.
The evaluator expands eight days past the planned window first and widens only while no allowed start
is found, so it usually beats that baseline; ``ratio_vs_short`` compares it with a bare expansion of
that first span alone (the evaluator's own overhead).

Prints one JSON object: median milliseconds per evaluation and per baseline expansion, and their ratio.

    .venv/bin/python benchmarks/calendar_eval.py                      # defaults: 260 weeks, 12 holidays, 200 runs
    .venv/bin/python benchmarks/calendar_eval.py --weeks 520 --runs 500
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, List

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# This file's name shadows the standard library's calendar module (dateutil imports it): drop its directory.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, os.path.join(REPO, "build", "src"))

import icalendar  # noqa: E402
import recurring_ical_events  # noqa: E402

from ansible_collections.relops.release.plugins.plugin_utils.calendar import evaluate, load_windows  # noqa: E402

UTC = datetime.timezone.utc
START = datetime.date(2026, 1, 2)  # a Friday
HORIZON = datetime.timedelta(days=366)
HOLIDAYS = [(1, 1), (5, 1), (10, 3), (12, 24), (12, 25), (12, 26), (12, 31), (4, 3), (4, 6), (5, 14), (5, 25), (6, 4)]


def build_calendar(weeks: int, holidays: int) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//relops.release//benchmark//EN"]
    for week in range(weeks):
        friday = START + datetime.timedelta(weeks=week)
        monday = friday + datetime.timedelta(days=3)
        lines += [
            "BEGIN:VEVENT",
            "UID:freeze-%d@bench" % week,
            "SUMMARY:Weekend freeze %d" % week,
            "DTSTART;TZID=Europe/Berlin:%sT180000" % friday.strftime("%Y%m%d"),
            "DTEND;TZID=Europe/Berlin:%sT060000" % monday.strftime("%Y%m%d"),
            "END:VEVENT",
        ]
    for index in range(holidays):
        month, day = HOLIDAYS[index % len(HOLIDAYS)]
        lines += [
            "BEGIN:VEVENT",
            "UID:holiday-%d@bench" % index,
            "SUMMARY:Holiday %d" % index,
            "DTSTART;VALUE=DATE:2026%02d%02d" % (month, day),
            "RRULE:FREQ=YEARLY;COUNT=5",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def median_ms(moments: List[datetime.datetime], action: Callable[[datetime.datetime], Any]) -> float:
    timings = []
    for moment in moments:
        started = time.perf_counter()
        action(moment)
        timings.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=260, help="weekly freezes (260 = five years)")
    parser.add_argument("--holidays", type=int, default=12, help="yearly all-day holidays")
    parser.add_argument("--runs", type=int, default=200, help="evaluations (and baseline expansions) measured")
    options = parser.parse_args()

    text = build_calendar(options.weeks, options.holidays)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "freezes.ics")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        started = time.perf_counter()
        windows = load_windows([{"type": "ics", "path": path}], default_tz="Europe/Berlin")
        load_ms = (time.perf_counter() - started) * 1000.0

    rng = random.Random(5)
    first = datetime.datetime.combine(START, datetime.time(), UTC)
    span = datetime.timedelta(weeks=options.weeks)
    moments = [first + datetime.timedelta(seconds=rng.uniform(0, span.total_seconds())) for _run in range(options.runs)]
    expander = recurring_ical_events.of(icalendar.Calendar.from_ical(text))

    def decide(moment: datetime.datetime) -> Any:
        planned = (moment + datetime.timedelta(days=1), moment + datetime.timedelta(days=1, hours=4))
        return evaluate(windows, now=moment, planned=planned, horizon=HORIZON)

    def expand(moment: datetime.datetime) -> Any:
        return expander.between(moment, moment + datetime.timedelta(days=1, hours=4) + HORIZON)

    def expand_week(moment: datetime.datetime) -> Any:
        return expander.between(moment, moment + datetime.timedelta(days=9, hours=4))

    # Warm both paths once so imports and caches are not measured.
    decide(moments[0])
    expand(moments[0])
    expand_week(moments[0])
    baseline = median_ms(moments, expand)
    short = median_ms(moments, expand_week)
    evaluation = median_ms(moments, decide)
    print(
        json.dumps(
            {
                "benchmark": "calendar_evaluation",
                "weekly_freezes": options.weeks,
                "yearly_holidays": options.holidays,
                "runs": options.runs,
                "horizon_days": HORIZON.days,
                "load_ms": round(load_ms, 2),
                "evaluate_median_ms": round(evaluation, 3),
                "baseline": "recurring-ical-events between() over the same span",
                "baseline_median_ms": round(baseline, 3),
                "ratio": round(evaluation / baseline, 3),
                "short_baseline": "recurring-ical-events between() over the first 9 days only",
                "short_baseline_median_ms": round(short, 3),
                "ratio_vs_short": round(evaluation / short, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
