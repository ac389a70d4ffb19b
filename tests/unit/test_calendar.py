"""The calendar evaluator: sources, DST behaviour, scoping and the answers (plugin_utils/calendar)."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.relops.release.plugins.plugin_utils.calendar import (
    CalendarError,
    CalendarUnavailable,
    evaluate,
    load_windows,
)
from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import resolve_instance
from ansible_collections.relops.release.plugins.plugin_utils.itsm.local import LocalBackend
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow import ServiceNowClient
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow_backend import ServiceNowBackend
from ansible_collections.relops.release.plugins.plugin_utils.runctx import current_actor

UTC = datetime.timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime.datetime:
    return datetime.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def ics(tmp_path: Path, *events: str, name: str = "cal.ics") -> str:
    body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//relops tests//EN\r\n"
    for event in events:
        body += (
            "BEGIN:VEVENT\r\n" + "\r\n".join(line.strip() for line in event.strip().splitlines()) + "\r\nEND:VEVENT\r\n"
        )
    body += "END:VCALENDAR\r\n"
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def windows_source(*windows: Dict[str, Any], **options: Any) -> Dict[str, Any]:
    return dict({"type": "windows", "windows": list(windows)}, **options)


def spans(answer_hits: List[Any]) -> List[Tuple[str, datetime.datetime, datetime.datetime]]:
    return [(hit.name, hit.start, hit.end) for hit in answer_hits]


# Bad input


def test_unknown_time_zone_in_a_yaml_window_names_it() -> None:
    source = windows_source({"name": "freeze", "start": "2026-12-20", "end": "2026-12-31", "timezone": "Mars/Olympus"})
    with pytest.raises(CalendarError, match=r"window 'freeze': unknown time zone 'Mars/Olympus'.*IANA"):
        load_windows([source])


def test_unknown_default_time_zone_is_refused() -> None:
    with pytest.raises(CalendarError, match="default time zone: unknown time zone 'Europe/Atlantis'"):
        load_windows([], default_tz="Europe/Atlantis")


def test_unknown_tzid_in_an_ics_event_names_event_and_zone(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        """UID:x
        SUMMARY:Mars freeze
        DTSTART;TZID=Mars/Olympus:20260321T220000
        DTEND;TZID=Mars/Olympus:20260322T060000""",
    )
    with pytest.raises(CalendarError, match=r"event 'Mars freeze': DTSTART names unknown time zone 'Mars/Olympus'"):
        load_windows([{"type": "ics", "path": path}])


@pytest.mark.parametrize(
    "body, message",
    [
        ("this is not a calendar\r\n", "malformed iCalendar data"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260101T000000\r\n", "malformed iCalendar data"),
        (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:u\r\nSUMMARY:s\r\nDTSTART:tomorrow\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n",
            "DTSTART cannot be read",
        ),
        (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:u\r\nSUMMARY:s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "has no DTSTART",
        ),
    ],
)
def test_malformed_ics_is_refused_with_the_file_named(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "broken.ics"
    path.write_text(body)
    with pytest.raises(CalendarError, match="calendar %s: .*%s" % (path, message)):
        load_windows([{"type": "ics", "path": str(path)}])


@pytest.mark.parametrize(
    "start, until, message",
    [
        ("DTSTART;VALUE=DATE:20260321", "20260501T000000Z", "UNTIL is a date-time but DTSTART is a date"),
        ("DTSTART;TZID=Europe/Berlin:20260321T220000", "20260501", "UNTIL is a date but DTSTART is a date-time"),
        ("DTSTART;TZID=Europe/Berlin:20260321T220000", "20260501T000000", "UNTIL is a floating date-time"),
        ("DTSTART:20260321T220000", "20260501T000000Z", "UNTIL is in UTC but DTSTART is floating"),
    ],
)
def test_rrule_until_of_the_wrong_type_is_refused(tmp_path: Path, start: str, until: str, message: str) -> None:
    path = ics(tmp_path, "UID:u\nSUMMARY:Weekly\n%s\nRRULE:FREQ=WEEKLY;UNTIL=%s" % (start, until))
    with pytest.raises(CalendarError, match=r"event 'Weekly': RRULE %s.*\(RFC 5545 3.3.10\); write UNTIL as" % message):
        load_windows([{"type": "ics", "path": path}])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_calendar_url_is_calendar_unavailable() -> None:
    url = "http://127.0.0.1:%d/freeze.ics" % free_port()
    with pytest.raises(CalendarUnavailable, match="calendar URL %s is unreachable" % url):
        load_windows([{"type": "ics", "url": url, "timeout": 2}])


@pytest.mark.parametrize(
    "source, message",
    [
        ({"type": "gcal"}, "type 'gcal' is not one of"),
        ({"type": "ics"}, "give exactly one of path or url"),
        ({"type": "ics", "path": "/nonexistent/x.ics"}, "cannot read /nonexistent/x.ics"),
        (
            {"type": "windows", "windows": [{"name": "w", "cron_start": "0 22 * *", "cron_end": "0 6 * * 1"}]},
            "not a five-field cron",
        ),
        ({"type": "windows", "windows": [{"name": "w", "start": "2026-12-20"}]}, "needs both start and end"),
        (
            {"type": "windows", "windows": [{"name": "w", "start": "2026-12-20", "end": "2026-12-01"}]},
            "ends .* before it starts",
        ),
        ({"type": "windows", "windows": [{"start": "2026-12-20", "end": "2026-12-21"}]}, "has no name"),
        (
            {
                "type": "windows",
                "windows": [{"name": "w", "start": "2026-12-20", "end": "2026-12-21", "kind": "freeze"}],
            },
            "kind must be blackout or maintenance",
        ),
        ({"type": "windows", "windows": [], "scope": {"team": "x"}}, "unknown scope key 'team'"),
        ({"type": "ics", "path": "x.ics", "color": "red"}, "unknown options color"),
    ],
)
def test_bad_sources_name_the_problem(source: Dict[str, Any], message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        load_windows([source])


# DST and time zones


def test_weekend_freeze_across_spring_forward_in_berlin_follows_the_wall_clock() -> None:
    windows = load_windows(
        [
            windows_source(
                {"name": "weekend", "cron_start": "0 18 * * 5", "cron_end": "0 6 * * 1", "timezone": "Europe/Berlin"}
            )
        ]
    )
    # Clocks go forward on Sunday 2026-03-29: Friday 18:00 is CET (UTC+1), Monday 06:00 CEST (UTC+2).
    answer = evaluate(windows, now=utc(2026, 3, 28, 12))
    assert spans(answer.current) == [("weekend", utc(2026, 3, 27, 17), utc(2026, 3, 30, 4))]
    assert evaluate(windows, now=utc(2026, 3, 30, 3, 59)).in_blackout
    assert not evaluate(windows, now=utc(2026, 3, 30, 4)).in_blackout
    assert evaluate(windows, now=utc(2026, 3, 30, 4, 0)).next_allowed_start == utc(2026, 3, 30, 4)
    assert evaluate(windows, now=utc(2026, 3, 28)).next_allowed_start == utc(2026, 3, 30, 4)


def test_weekend_freeze_across_fall_back_in_berlin_follows_the_wall_clock() -> None:
    windows = load_windows(
        [
            windows_source(
                {"name": "weekend", "cron_start": "0 18 * * 5", "cron_end": "0 6 * * 1", "timezone": "Europe/Berlin"}
            )
        ]
    )
    # Clocks go back on Sunday 2026-10-25: Friday 18:00 is CEST (UTC+2), Monday 06:00 CET (UTC+1).
    answer = evaluate(windows, now=utc(2026, 10, 25, 12))
    assert spans(answer.current) == [("weekend", utc(2026, 10, 23, 16), utc(2026, 10, 26, 5))]
    assert evaluate(windows, now=utc(2026, 10, 26, 4, 30)).in_blackout


def test_freezes_across_both_new_york_dst_changes() -> None:
    windows = load_windows(
        [
            windows_source(
                {"name": "spring", "start": "2026-03-06T18:00", "end": "2026-03-09T06:00"},
                {"name": "autumn", "start": "2026-10-30T18:00", "end": "2026-11-02T06:00"},
                timezone="America/New_York",
            )
        ]
    )
    # 2026-03-08 EST (UTC-5) -> EDT (UTC-4); 2026-11-01 EDT -> EST.
    assert spans(evaluate(windows, now=utc(2026, 3, 8, 12)).current) == [
        ("spring", utc(2026, 3, 6, 23), utc(2026, 3, 9, 10))
    ]
    assert spans(evaluate(windows, now=utc(2026, 11, 1, 12)).current) == [
        ("autumn", utc(2026, 10, 30, 22), utc(2026, 11, 2, 11))
    ]
    assert not evaluate(windows, now=utc(2026, 11, 2, 11)).in_blackout


def test_ics_weekly_freeze_in_new_york_keeps_local_start_across_dst(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        """UID:ny
        SUMMARY:Friday release freeze
        DTSTART;TZID=America/New_York:20261023T160000
        DURATION:PT4H
        RRULE:FREQ=WEEKLY;COUNT=3""",
    )
    windows = load_windows([{"type": "ics", "path": path}])
    found = spans(evaluate(windows, now=utc(2026, 10, 20), planned=(utc(2026, 10, 20), utc(2026, 11, 10))).overlapping)
    assert found == [
        ("Friday release freeze", utc(2026, 10, 23, 20), utc(2026, 10, 24, 0)),
        ("Friday release freeze", utc(2026, 10, 30, 20), utc(2026, 10, 31, 0)),
        ("Friday release freeze", utc(2026, 11, 6, 21), utc(2026, 11, 7, 1)),
    ]


def test_weekly_rrule_with_exdate_skips_the_excluded_week(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        """UID:weekly
        SUMMARY:Tuesday patch freeze
        DTSTART;TZID=Europe/Berlin:20260602T090000
        DTEND;TZID=Europe/Berlin:20260602T120000
        RRULE:FREQ=WEEKLY;BYDAY=TU
        EXDATE;TZID=Europe/Berlin:20260616T090000""",
    )
    windows = load_windows([{"type": "ics", "path": path}])
    assert evaluate(windows, now=utc(2026, 6, 9, 8)).in_blackout
    assert not evaluate(windows, now=utc(2026, 6, 16, 8)).in_blackout
    assert evaluate(windows, now=utc(2026, 6, 23, 8)).in_blackout
    june = evaluate(windows, now=utc(2026, 6, 1), planned=(utc(2026, 6, 1), utc(2026, 7, 1))).overlapping
    assert [hit.start.day for hit in june] == [2, 9, 23, 30]


RECURRING_NIGHT = """UID:night
SUMMARY:Saturday night freeze
DTSTART;TZID=Europe/Berlin:20260321T220000
DTEND;TZID=Europe/Berlin:20260322T060000
RRULE:FREQ=WEEKLY;COUNT=3"""


def test_recurring_dtend_window_spanning_dst_keeps_the_exact_duration(tmp_path: Path) -> None:
    """RFC 5545 3.8.5.3: every instance lasts the first's 8 elapsed hours, so it ends 07:00 CEST on 2026-03-29."""
    windows = load_windows([{"type": "ics", "path": ics(tmp_path, RECURRING_NIGHT)}])
    (hit,) = evaluate(windows, now=utc(2026, 3, 29, 4, 30)).current
    assert (hit.start, hit.end) == (utc(2026, 3, 28, 21), utc(2026, 3, 29, 5))
    assert hit.end - hit.start == datetime.timedelta(hours=8)
    assert hit.end.astimezone(BERLIN).hour == 7


def test_recurring_dtend_window_can_be_read_on_the_wall_clock(tmp_path: Path) -> None:
    windows = load_windows([{"type": "ics", "path": ics(tmp_path, RECURRING_NIGHT), "dtend": "wall_clock"}])
    assert not evaluate(windows, now=utc(2026, 3, 29, 4, 30)).in_blackout
    (hit,) = evaluate(windows, now=utc(2026, 3, 29, 3, 30)).current
    assert hit.end == utc(2026, 3, 29, 4)
    assert hit.end.astimezone(BERLIN).hour == 6


def test_duration_days_are_nominal_and_hours_exact(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        """UID:nominal
        SUMMARY:Weekend (nominal)
        DTSTART;TZID=Europe/Berlin:20260321T120000
        DURATION:P1DT2H
        RRULE:FREQ=WEEKLY;COUNT=2""",
    )
    windows = load_windows([{"type": "ics", "path": path}])
    hits = evaluate(windows, now=utc(2026, 3, 20), planned=(utc(2026, 3, 20), utc(2026, 4, 1))).overlapping
    # One nominal day to Sunday 12:00 on the wall clock, then two exact hours: 14:00 both weeks.
    assert [h.end.astimezone(BERLIN).strftime("%a %H:%M") for h in hits] == ["Sun 14:00", "Sun 14:00"]
    assert [h.end - h.start for h in hits] == [datetime.timedelta(hours=26), datetime.timedelta(hours=25)]


def test_all_day_event_covers_whole_days_in_the_source_time_zone(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        """UID:xmas
        SUMMARY:Christmas
        DTSTART;VALUE=DATE:20261224
        DTEND;VALUE=DATE:20261227""",
    )
    windows = load_windows([{"type": "ics", "path": path, "timezone": "Europe/Berlin"}])
    (hit,) = evaluate(windows, now=utc(2026, 12, 25, 12)).current
    assert (hit.start, hit.end) == (utc(2026, 12, 23, 23), utc(2026, 12, 26, 23))
    assert not evaluate(windows, now=utc(2026, 12, 23, 22, 59)).in_blackout


def test_floating_event_is_read_in_the_service_time_zone(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        """UID:float
        SUMMARY:Office hours freeze
        DTSTART:20260601T090000
        DTEND:20260601T170000""",
    )
    new_york = load_windows([{"type": "ics", "path": path, "timezone": "America/New_York"}])
    berlin = load_windows([{"type": "ics", "path": path}], default_tz="Europe/Berlin")
    assert spans(evaluate(new_york, now=utc(2026, 6, 1, 14)).current) == [
        ("Office hours freeze", utc(2026, 6, 1, 13), utc(2026, 6, 1, 21))
    ]
    assert spans(evaluate(berlin, now=utc(2026, 6, 1, 8)).current) == [
        ("Office hours freeze", utc(2026, 6, 1, 7), utc(2026, 6, 1, 15))
    ]


def test_window_crossing_midnight() -> None:
    windows = load_windows(
        [
            windows_source(
                {"name": "nightly batch", "cron_start": "0 23 * * *", "cron_end": "0 2 * * *"},
                {"name": "new year", "start": "2026-12-31T22:00", "end": "2027-01-01T03:00"},
                timezone="Europe/Berlin",
            )
        ]
    )
    assert [h.name for h in evaluate(windows, now=datetime.datetime(2026, 5, 5, 0, 30, tzinfo=BERLIN)).current] == [
        "nightly batch"
    ]
    assert not evaluate(windows, now=datetime.datetime(2026, 5, 5, 2, 0, tzinfo=BERLIN)).in_blackout
    assert evaluate(windows, now=datetime.datetime(2026, 5, 4, 23, 0, tzinfo=BERLIN)).in_blackout
    at_midnight = evaluate(windows, now=datetime.datetime(2027, 1, 1, 0, 0, tzinfo=BERLIN))
    assert sorted(h.name for h in at_midnight.current) == ["new year", "nightly batch"]
    assert at_midnight.next_allowed_start == datetime.datetime(2027, 1, 1, 3, 0, tzinfo=BERLIN)


def test_planned_window_partly_overlapping_a_blackout() -> None:
    windows = load_windows(
        [windows_source({"name": "month end", "start": "2026-06-30T18:00", "end": "2026-07-01T06:00"}, timezone="UTC")]
    )
    answer = evaluate(windows, now=utc(2026, 6, 30, 12), planned=(utc(2026, 7, 1, 5), utc(2026, 7, 1, 9)))
    assert not answer.in_blackout
    assert answer.planned_overlaps_blackout
    assert spans(answer.overlapping) == [("month end", utc(2026, 6, 30, 18), utc(2026, 7, 1, 6))]
    # A four-hour change fits from the blackout's end.
    assert answer.next_allowed_start == utc(2026, 7, 1, 6)
    before = evaluate(windows, now=utc(2026, 6, 30, 12), planned=(utc(2026, 6, 30, 14), utc(2026, 6, 30, 18)))
    assert before.overlapping == [] and before.next_allowed_start == utc(2026, 6, 30, 14)
    too_long = evaluate(windows, now=utc(2026, 6, 30, 12), planned=(utc(2026, 6, 30, 14), utc(2026, 6, 30, 19)))
    assert too_long.next_allowed_start == utc(2026, 7, 1, 6)


def test_recurrence_override_keeps_its_own_times(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        RECURRING_NIGHT,
        """UID:night
        SUMMARY:Moved freeze
        RECURRENCE-ID;TZID=Europe/Berlin:20260404T220000
        DTSTART;TZID=Europe/Berlin:20260404T230000
        DTEND;TZID=Europe/Berlin:20260405T050000""",
    )
    windows = load_windows([{"type": "ics", "path": path}])
    hits = evaluate(windows, now=utc(2026, 4, 4), planned=(utc(2026, 4, 4), utc(2026, 4, 6))).overlapping
    assert spans(hits) == [("Moved freeze", utc(2026, 4, 4, 21), utc(2026, 4, 5, 3))]


def test_rdate_adds_occurrences(tmp_path: Path) -> None:
    path = ics(
        tmp_path,
        """UID:rdate
        SUMMARY:Board meeting freeze
        DTSTART;TZID=Europe/Berlin:20260115T080000
        DTEND;TZID=Europe/Berlin:20260115T180000
        RDATE;TZID=Europe/Berlin:20260415T080000,20260715T080000""",
    )
    windows = load_windows([{"type": "ics", "path": path}])
    hits = evaluate(windows, now=utc(2026, 1, 1), planned=(utc(2026, 1, 1), utc(2026, 12, 31))).overlapping
    assert [(h.start, h.end) for h in hits] == [
        (utc(2026, 1, 15, 7), utc(2026, 1, 15, 17)),
        (utc(2026, 4, 15, 6), utc(2026, 4, 15, 16)),
        (utc(2026, 7, 15, 6), utc(2026, 7, 15, 16)),
    ]


# Scope and maintenance


def test_scope_limits_windows_to_their_service_environment_ci_and_business_unit() -> None:
    windows = load_windows(
        [
            windows_source(
                {
                    "name": "payments freeze",
                    "start": "2026-06-01",
                    "end": "2026-06-02",
                    "scope": {"service": "payments"},
                },
                {
                    "name": "prod freeze",
                    "start": "2026-06-01",
                    "end": "2026-06-02",
                    "scope": {"environment": ["prod", "dr"]},
                },
                {"name": "db01 freeze", "start": "2026-06-01", "end": "2026-06-02", "scope": {"ci": "db01"}},
                {
                    "name": "retail freeze",
                    "start": "2026-06-01",
                    "end": "2026-06-02",
                    "scope": {"business_unit": "retail"},
                },
            )
        ]
    )
    now = utc(2026, 6, 1, 12)

    def names(scope: Optional[Dict[str, Any]]) -> List[str]:
        return sorted(h.name for h in evaluate(windows, now=now, scope=scope).current)

    asked = {"service": "search", "environment": "staging", "ci": ["web01", "web02"], "business_unit": "wholesale"}
    assert names(asked) == []
    assert names(dict(asked, service="payments")) == ["payments freeze"]
    assert names(dict(asked, environment="dr")) == ["prod freeze"]
    assert names(dict(asked, ci=["web01", "db01"])) == ["db01 freeze"]
    assert names(dict(asked, business_unit="retail")) == ["retail freeze"]
    # A request that does not say its scope is held by every freeze (fail closed).
    assert len(names(None)) == 4


def test_maintenance_windows_answer_outside_and_move_the_next_start() -> None:
    windows = load_windows(
        [
            windows_source(
                {"name": "Sunday maintenance", "cron_start": "0 2 * * 0", "cron_end": "0 6 * * 0"},
                kind="maintenance",
                timezone="Europe/Berlin",
            ),
            windows_source({"name": "freeze", "start": "2026-06-07", "end": "2026-06-07"}, timezone="Europe/Berlin"),
        ]
    )
    inside = evaluate(windows, now=utc(2026, 6, 14, 1), planned=(utc(2026, 6, 14, 1), utc(2026, 6, 14, 2)))
    assert inside.outside_maintenance is False and inside.next_allowed_start == utc(2026, 6, 14, 1)
    assert [h.kind for h in inside.current] == ["maintenance"] and not inside.in_blackout
    outside = evaluate(windows, now=utc(2026, 6, 3, 10), planned=(utc(2026, 6, 3, 10), utc(2026, 6, 3, 12)))
    assert outside.outside_maintenance is True
    # The 2026-06-07 Sunday window is frozen; the next one is 2026-06-14 02:00 CEST.
    assert outside.next_allowed_start == utc(2026, 6, 14, 0)
    # 02:00 to 06:00 on the wall clock lasts five hours only the night clocks go back.
    five_hours = evaluate(windows, now=utc(2026, 6, 3), planned=(utc(2026, 6, 3), utc(2026, 6, 3, 5)))
    assert five_hours.outside_maintenance is True and five_hours.next_allowed_start == utc(2026, 10, 25, 0)
    too_long = evaluate(windows, now=utc(2026, 6, 3), planned=(utc(2026, 6, 3), utc(2026, 6, 3, 6)))
    assert too_long.next_allowed_start is None
    no_maintenance = evaluate(windows[1:], now=utc(2026, 6, 3))
    assert no_maintenance.outside_maintenance is None


def test_yaml_file_source_with_gitlab_field_names(tmp_path: Path) -> None:
    path = tmp_path / "freezes.yml"
    path.write_text(
        "timezone: America/New_York\n"
        "scope: {environment: prod}\n"
        "windows:\n"
        "  - name: Friday freeze\n"
        "    freeze_start: '0 17 * * 5'\n"
        "    freeze_end: '0 8 * * 1'\n"
        "    cron_timezone: Europe/Berlin\n"
        "  - name: Thanksgiving\n"
        "    start: 2026-11-26\n"
        "    end: 2026-11-27\n"
    )
    windows = load_windows([{"type": "yaml", "path": "freezes.yml"}], base_dir=str(tmp_path))
    thanksgiving = evaluate(windows, now=utc(2026, 11, 26, 12), scope={"environment": "prod"})
    assert [h.name for h in thanksgiving.current] == ["Thanksgiving"]
    assert thanksgiving.current[0].end == utc(2026, 11, 28, 5)
    assert evaluate(windows, now=utc(2026, 11, 26, 12), scope={"environment": "dev"}).current == []
    friday = evaluate(windows, now=utc(2026, 6, 5, 15, 30)).current
    assert spans(friday) == [("Friday freeze", utc(2026, 6, 5, 15), utc(2026, 6, 8, 6))]


def test_answer_as_dict_is_plain_data() -> None:
    windows = load_windows([windows_source({"name": "w", "start": "2026-06-01T10:00", "end": "2026-06-01T12:00"})])
    data = evaluate(windows, now=utc(2026, 6, 1, 11), planned=(utc(2026, 6, 1, 11), utc(2026, 6, 1, 13))).as_dict()
    assert data["in_blackout"] is True and data["planned_overlaps_blackout"] is True
    assert data["current"][0] == {
        "name": "w",
        "kind": "blackout",
        "source": "calendar source 1 (windows)",
        "start": "2026-06-01T10:00:00.000000Z",
        "end": "2026-06-01T12:00:00.000000Z",
        "scope": {},
    }
    assert data["next_allowed_start"] == "2026-06-01T12:00:00.000000Z"


def test_evaluate_refuses_naive_times_and_backwards_plans() -> None:
    with pytest.raises(CalendarError, match="now must be a date-time with a time zone"):
        evaluate([], now=datetime.datetime(2026, 1, 1))
    with pytest.raises(CalendarError, match="planned window ends"):
        evaluate([], now=utc(2026, 1, 1), planned=(utc(2026, 1, 2), utc(2026, 1, 1)))


# Properties: the answers agree with a brute-force reading of the same one-off windows.

BASE = utc(2026, 1, 1)
minutes = st.integers(min_value=0, max_value=600)


@given(
    intervals=st.lists(st.tuples(minutes, st.integers(min_value=1, max_value=120)), max_size=6),
    now=minutes,
    length=st.integers(min_value=0, max_value=90),
)
def test_answers_match_a_brute_force_reading(intervals: List[Tuple[int, int]], now: int, length: int) -> None:
    windows = load_windows(
        [
            windows_source(
                *[
                    {
                        "name": "w%d" % index,
                        "start": (BASE + datetime.timedelta(minutes=start)).strftime("%Y-%m-%dT%H:%M"),
                        "end": (BASE + datetime.timedelta(minutes=start + size)).strftime("%Y-%m-%dT%H:%M"),
                    }
                    for index, (start, size) in enumerate(intervals)
                ]
            )
        ]
    )
    blocked = set()
    for start, size in intervals:
        blocked.update(range(start, start + size))
    moment = BASE + datetime.timedelta(minutes=now)
    planned = (moment, moment + datetime.timedelta(minutes=length)) if length else None
    answer = evaluate(windows, now=moment, planned=planned)
    assert answer.in_blackout == (now in blocked)
    if planned:
        assert answer.planned_overlaps_blackout == any(m in blocked for m in range(now, now + length))
    expected = next(t for t in range(now, 2000) if not any(m in blocked for m in range(t, t + max(length, 1))))
    assert answer.next_allowed_start == BASE + datetime.timedelta(minutes=expected)


# ServiceNow schedules through the ITSM backend


def servicenow_backend(standin: Any) -> Any:
    config = resolve_instance({"host": standin.url, "username": "admin", "password": "admin-secret"}, {})
    return ServiceNowBackend(ServiceNowClient(config))


def test_servicenow_blackout_schedule_from_the_stand_in(servicenow: Any) -> None:
    schedule = servicenow.insert(
        "cmn_schedule_blackout", {"name": "Weekend freeze", "type": "blackout", "time_zone": "Europe/Berlin"}
    )
    servicenow.insert(
        "cmn_schedule_span",
        {
            "schedule": schedule["sys_id"],
            "name": "Saturday night",
            "start_date_time": "20260321T220000",
            "end_date_time": "20260322T060000",
            "repeat_type": "weekly",
            "days_of_week": "6",
            "repeat_until": "2026-04-30",
        },
    )
    servicenow.insert(
        "cmn_schedule_span",
        {
            "schedule": schedule["sys_id"],
            "name": "Year end",
            "start_date_time": "20261224T000000",
            "end_date_time": "20261226T235959",
            "all_day": "true",
        },
    )
    maintenance = servicenow.insert(
        "cmn_schedule_maintenance", {"name": "Patch Tuesday", "type": "maintenance", "time_zone": "America/New_York"}
    )
    servicenow.insert(
        "cmn_schedule_span",
        {
            "schedule": maintenance["sys_id"],
            "name": "Tuesday evening",
            "start_date_time": "20260106T180000",
            "end_date_time": "20260106T220000",
            "repeat_type": "weekly",
            "days_of_week": "2",
        },
    )
    backend = servicenow_backend(servicenow)
    windows = load_windows(
        [
            {"type": "servicenow", "schedule": "Weekend freeze", "scope": {"service": "payments"}},
            {"type": "servicenow", "schedule": "Patch Tuesday"},
        ],
        itsm=backend,
    )
    assert [(w.name, w.kind) for w in windows] == [("Weekend freeze", "blackout"), ("Patch Tuesday", "maintenance")]
    # Exact duration across spring-forward, as for ICS: ends 07:00 CEST.
    night = evaluate(windows, now=utc(2026, 3, 29, 4, 30), scope={"service": "payments"})
    assert spans([h for h in night.current if h.kind == "blackout"]) == [
        ("Saturday night", utc(2026, 3, 28, 21), utc(2026, 3, 29, 5))
    ]
    assert not evaluate(windows, now=utc(2026, 5, 2, 23), scope={"service": "payments"}).in_blackout
    assert evaluate(windows, now=utc(2026, 12, 26, 22), scope={"service": "payments"}).in_blackout
    assert not evaluate(windows, now=utc(2026, 12, 26, 22), scope={"service": "search"}).in_blackout
    tuesday = evaluate(windows, now=utc(2026, 6, 1), planned=(utc(2026, 6, 2, 23), utc(2026, 6, 3, 1)))
    assert tuesday.outside_maintenance is False
    wednesday = evaluate(windows, now=utc(2026, 6, 1), planned=(utc(2026, 6, 3, 23), utc(2026, 6, 4, 1)))
    assert wednesday.outside_maintenance is True and wednesday.next_allowed_start == utc(2026, 6, 9, 22)
    with pytest.raises(CalendarError, match="servicenow ITSM backend has no blackout or maintenance schedule"):
        load_windows([{"type": "servicenow", "schedule": "Nope"}], itsm=backend)


def test_servicenow_schedule_with_an_unsupported_repeat_is_refused(servicenow: Any) -> None:
    schedule = servicenow.insert("cmn_schedule_blackout", {"name": "Odd", "type": "blackout", "time_zone": "UTC"})
    servicenow.insert(
        "cmn_schedule_span",
        {
            "schedule": schedule["sys_id"],
            "name": "odd",
            "start_date_time": "20260101T000000",
            "end_date_time": "20260101T010000",
            "repeat_type": "weekmwf",
        },
    )
    with pytest.raises(CalendarError, match="repeat_type 'weekmwf' is not supported"):
        load_windows([{"type": "servicenow", "schedule": "Odd"}], itsm=servicenow_backend(servicenow))


def test_unreachable_servicenow_is_calendar_unavailable(servicenow: Any) -> None:
    backend = servicenow_backend(servicenow)
    servicenow.stop()
    with pytest.raises(CalendarUnavailable, match="cannot read schedule 'Weekend freeze' from ITSM"):
        load_windows([{"type": "servicenow", "schedule": "Weekend freeze"}], itsm=backend)


def test_local_backend_keeps_no_schedules(tmp_path: Path) -> None:
    backend = LocalBackend(None, current_actor(environ={"RELOPS_RUN_ID": "t"}))
    with pytest.raises(CalendarError, match="the local backend keeps no schedules, use ics or yaml sources"):
        load_windows([{"type": "servicenow", "schedule": "Weekend freeze"}], itsm=backend)


@given(
    blackouts=st.lists(st.tuples(minutes, st.integers(min_value=1, max_value=120)), max_size=4),
    slots=st.lists(st.tuples(minutes, st.integers(min_value=1, max_value=180)), min_size=1, max_size=4),
    now=minutes,
    length=st.integers(min_value=1, max_value=90),
)
def test_maintenance_answers_match_a_brute_force_reading(
    blackouts: List[Tuple[int, int]], slots: List[Tuple[int, int]], now: int, length: int
) -> None:
    def entries(pairs: List[Tuple[int, int]], prefix: str) -> List[Dict[str, Any]]:
        return [
            {
                "name": "%s%d" % (prefix, index),
                "start": (BASE + datetime.timedelta(minutes=start)).strftime("%Y-%m-%dT%H:%M"),
                "end": (BASE + datetime.timedelta(minutes=start + size)).strftime("%Y-%m-%dT%H:%M"),
            }
            for index, (start, size) in enumerate(pairs)
        ]

    windows = load_windows(
        [windows_source(*entries(blackouts, "b")), windows_source(*entries(slots, "m"), kind="maintenance")]
    )
    blocked = {m for start, size in blackouts for m in range(start, start + size)}
    open_minutes = {m for start, size in slots for m in range(start, start + size)}
    moment = BASE + datetime.timedelta(minutes=now)
    answer = evaluate(windows, now=moment, planned=(moment, moment + datetime.timedelta(minutes=length)))
    assert answer.outside_maintenance == (not all(m in open_minutes for m in range(now, now + length)))
    allowed = [t for t in range(now, 2000) if all(m in open_minutes and m not in blocked for m in range(t, t + length))]
    expected = BASE + datetime.timedelta(minutes=allowed[0]) if allowed else None
    assert answer.next_allowed_start == expected
