from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.relops.release.plugins.module_utils.timestamps import (
    format_timestamp,
    parse_timestamp,
)

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
