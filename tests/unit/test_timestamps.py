from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.relops.release.plugins.module_utils.timestamps import (
    format_timestamp,
    parse_timestamp,
)
from ansible_collections.relops.release.plugins.plugin_utils.governance.times import servicenow_moment

aware = st.datetimes(
    min_value=datetime.datetime(1970, 1, 2),
    max_value=datetime.datetime(9998, 12, 31),
    timezones=st.sampled_from([datetime.timezone.utc, datetime.timezone(datetime.timedelta(hours=5, minutes=30))]),
)


@given(aware)
def test_format_then_parse_returns_the_same_instant(moment: datetime.datetime) -> None:
    assert parse_timestamp(format_timestamp(moment)) == moment


@given(aware, aware)
def test_text_order_is_time_order(first: datetime.datetime, second: datetime.datetime) -> None:
    assert (format_timestamp(first) < format_timestamp(second)) == (first < second)


def test_format_is_fixed_width_utc_with_microseconds() -> None:
    moment = datetime.datetime(2026, 3, 29, 1, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert format_timestamp(moment) == "2026-03-28T23:30:00.000000Z"


def test_naive_datetime_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        format_timestamp(datetime.datetime(2026, 1, 1))


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z", ""])
def test_unparseable_timestamp_names_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="not RFC 3339"):
        parse_timestamp(text)


def test_timestamp_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_timestamp("2026-01-01T00:00:00")


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2026-12-01 22:00:00", "2026-12-01 22:00:00"),
        ("2026-12-01T23:00:00+01:00", "2026-12-01 22:00:00"),
        ("2026-12-01T22:00:00Z", "2026-12-01 22:00:00"),
    ],
)
def test_servicenow_moment_stores_utc_in_servicenow_form(text: str, stored: str) -> None:
    assert servicenow_moment(text, "start_date") == stored


@pytest.mark.parametrize("text", ["next tuesday", "2026-12-01", "2026-12-01T22:00:00", "2026-13-01 00:00:00"])
def test_servicenow_moment_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError) as error:
        servicenow_moment(text, "start_date")
    message = str(error.value)
    assert repr(text) in message and "YYYY-MM-DD HH:MM:SS" in message
