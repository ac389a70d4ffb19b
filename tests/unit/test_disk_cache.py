"""Results kept on disk between ansible-playbook runs (plugin_utils/disk_cache.py): expanded iCalendar
occurrences (calendar/cache.py) and validated policies (policy/loader.py) answer as a fresh computation would,
and spare later runs the heavy libraries."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List
from zoneinfo import ZoneInfo

import pytest
import yaml

from ansible_collections.relops.release.plugins.plugin_utils.calendar import CalendarError, cache
from ansible_collections.relops.release.plugins.plugin_utils.calendar.ics import IcsCalendar
from ansible_collections.relops.release.plugins.plugin_utils.policy import load_policy
from ansible_collections.relops.release.plugins.plugin_utils.policy.loader import DEFAULT_POLICY_PATH, PolicyError

UTC = datetime.timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime.datetime(2027, 3, 20, 9, 0, tzinfo=UTC)
# ansible_collections/relops/release/plugins/plugin_utils/calendar/cache.py -> the directory holding ansible_collections
COLLECTIONS_ROOT = Path(os.path.abspath(cache.__file__)).parents[6]

CALENDAR = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//relops tests//EN\r\n"
    # Saturday 22:00 to Sunday 06:00 in Berlin, weekly, one week skipped; spans the spring-forward night.
    b"BEGIN:VEVENT\r\nUID:weekend@test\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Weekend freeze\r\n"
    b"DTSTART;TZID=Europe/Berlin:20270102T220000\r\nDTEND;TZID=Europe/Berlin:20270103T060000\r\n"
    b"RRULE:FREQ=WEEKLY\r\nEXDATE;TZID=Europe/Berlin:20270410T220000\r\nEND:VEVENT\r\n"
    b"BEGIN:VEVENT\r\nUID:year-end@test\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Year end\r\n"
    b"DTSTART;VALUE=DATE:20261220\r\nDURATION:P14D\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\n"
    b"END:VCALENDAR\r\n"
)
RANGES = [
    (NOW, NOW + datetime.timedelta(days=14)),  # includes 2027-03-28, the spring-forward Sunday
    (NOW + datetime.timedelta(days=20), NOW + datetime.timedelta(days=25)),  # the EXDATE week
    (NOW - datetime.timedelta(days=30), NOW + datetime.timedelta(days=366)),  # the evaluator's whole reach
    (NOW + datetime.timedelta(days=700), NOW + datetime.timedelta(days=720)),  # beyond the stored range
]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("RELOPS_CACHE_DIR", str(directory))
    return directory


def entries(directory: Path, kind: str) -> List[Path]:
    return sorted((directory / kind).glob("*.json")) if (directory / kind).is_dir() else []


def test_a_stored_expansion_answers_every_range_as_a_fresh_parse_does(cache_dir: Path) -> None:
    fresh = IcsCalendar(CALENDAR, "cal", BERLIN)
    first = cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=NOW)
    [stored] = entries(cache_dir, "calendars")
    second = cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=NOW)
    assert isinstance(second, cache._Expansion) and second.calendar is None
    for lo, hi in RANGES:
        expected = sorted(fresh.spans(lo, hi), key=lambda span: (span[1], span[0]))
        assert sorted(first(lo, hi), key=lambda span: (span[1], span[0])) == expected
        assert sorted(second(lo, hi), key=lambda span: (span[1], span[0])) == expected
    # Only the last range reached outside the stored one and needed the parser.
    assert second.calendar is not None
    spring = [span for span in second(*RANGES[0]) if span[1].date() == datetime.date(2027, 3, 27)]
    assert spring and spring[0][2] - spring[0][1] == datetime.timedelta(hours=8)  # exact duration over the DST night
    assert json.loads(stored.read_text())["to"] == (NOW + cache.AFTER).isoformat()


def test_edited_bytes_another_zone_or_dtend_mode_are_misses(cache_dir: Path) -> None:
    cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=NOW)
    cache.ics_spans(CALENDAR, "cal", BERLIN, "wall_clock", now=NOW)
    cache.ics_spans(CALENDAR, "cal", ZoneInfo("America/New_York"), "exact", now=NOW)
    edited = CALENDAR.replace(b"SUMMARY:Year end", b"SUMMARY:Year-end freeze")
    spans = cache.ics_spans(edited, "cal", BERLIN, "exact", now=NOW)
    assert len(entries(cache_dir, "calendars")) == 4
    names = {span[0] for span in spans(NOW - datetime.timedelta(days=100), NOW)}
    assert names == {"Weekend freeze", "Year-end freeze"}


def test_a_stale_or_corrupt_entry_is_rebuilt(cache_dir: Path) -> None:
    cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=NOW)
    [stored] = entries(cache_dir, "calendars")
    stored.write_text("{not json")
    assert not isinstance(cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=NOW), cache._Expansion)
    assert json.loads(stored.read_text())["from"] == (NOW - cache.BEFORE).isoformat()
    # A year later the stored range no longer reaches far enough: rebuilt around the new now.
    later = NOW + datetime.timedelta(days=60)
    assert not isinstance(cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=later), cache._Expansion)
    assert json.loads(stored.read_text())["from"] == (later - cache.BEFORE).isoformat()
    assert isinstance(cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=later), cache._Expansion)


def test_a_broken_calendar_fails_every_time_and_is_never_stored(cache_dir: Path) -> None:
    broken = CALENDAR.replace(b"DTEND;TZID=Europe/Berlin:20270103T060000", b"DTEND;TZID=Europe/Berlin:20270102T060000")
    for _attempt in range(2):
        with pytest.raises(CalendarError, match="ends before it starts"):
            cache.ics_spans(broken, "cal", BERLIN, "exact", now=NOW)
    assert entries(cache_dir, "calendars") == []


def test_an_unwritable_cache_directory_only_means_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("RELOPS_CACHE_DIR", str(blocker))
    spans = cache.ics_spans(CALENDAR, "cal", BERLIN, "exact", now=NOW)
    assert spans(*RANGES[0])
    assert load_policy().version


def test_later_processes_skip_icalendar_and_jsonschema(cache_dir: Path) -> None:
    """What the gate play gains: a second process answers from disk without importing either library."""
    calendar = cache_dir.parent / "cal.ics"
    calendar.write_bytes(CALENDAR)
    script = textwrap.dedent(
        """
        import datetime, json, sys
        sys.path.insert(0, %r)
        from zoneinfo import ZoneInfo
        from ansible_collections.relops.release.plugins.plugin_utils.calendar import cache
        from ansible_collections.relops.release.plugins.plugin_utils.policy import load_policy
        now = datetime.datetime.fromisoformat(%r)
        spans = cache.ics_spans(open(%r, "rb").read(), "cal", ZoneInfo("Europe/Berlin"), "exact", now=now)
        found = spans(now, now + datetime.timedelta(days=14))
        policy = load_policy()
        print(json.dumps({
            "spans": len(found),
            "policy": policy.version,
            "icalendar": "icalendar" in sys.modules,
            "jsonschema": "jsonschema" in sys.modules,
        }))
        """
        % (str(COLLECTIONS_ROOT), NOW.isoformat(), str(calendar))
    )

    def run() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
        )
        result: dict = json.loads(done.stdout)
        return result

    first, second = run(), run()
    assert first["icalendar"] and first["jsonschema"]  # the first run parses and validates
    assert second == dict(first, icalendar=False, jsonschema=False)
    assert second["spans"] == 2


def test_only_policies_that_passed_validation_are_remembered(cache_dir: Path) -> None:
    with open(DEFAULT_POLICY_PATH, encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    assert load_policy(inline=document).digest == load_policy(inline=document).digest
    assert len(entries(cache_dir, "policies")) == 1
    bad = dict(document, gate=dict(document.get("gate") or {}, wait_timeout="soon"))
    for _attempt in range(2):
        with pytest.raises(PolicyError, match=r"gate\.wait_timeout"):
            load_policy(inline=bad)
    assert len(entries(cache_dir, "policies")) == 1
    # A YAML date is not the text it was written as: a remembered string version does not cover it.
    dated = dict(document, version=datetime.date(2026, 4, 1))
    stringly = dict(document, version="2026-04-01")
    load_policy(inline=stringly)
    with pytest.raises(PolicyError, match="version"):
        load_policy(inline=dated)
    # Nor is the key 1 the key "1", and keys of mixed types do not break the cache key.
    for odd in (dict(document, **{"1": "x"}), {**document, 1: "x"}):
        with pytest.raises(PolicyError):
            load_policy(inline=odd)
