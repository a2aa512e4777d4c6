"""`from` and `to` of the billing reports (gatewayz/billing/date_range.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gatewayz import errors
from gatewayz.billing import date_range


def test_a_date_is_a_whole_utc_day_at_either_end() -> None:
    found = date_range.parse("2026-01-10", "2026-01-10")
    assert found.start == datetime(2026, 1, 10, tzinfo=UTC)
    assert found.end == datetime(2026, 1, 11, tzinfo=UTC)


def test_date_times_keep_their_zone_and_a_naive_one_is_utc() -> None:
    found = date_range.parse("2026-01-10T12:00:00", "2026-01-10T15:30:00+02:00")
    assert found.start == datetime(2026, 1, 10, 12, tzinfo=UTC)
    assert found.end == datetime(2026, 1, 10, 15, 30, tzinfo=timezone(timedelta(hours=2)))
    # An unencoded `+` in a query string arrives as a space; `Z` is UTC.
    spaced = date_range.parse("2026-01-10T09:00:00 05:00", "2026-01-11T00:00:00Z")
    assert spaced.start == datetime(2026, 1, 10, 4, tzinfo=UTC)
    assert spaced.end == datetime(2026, 1, 11, tzinfo=UTC)


def test_either_end_may_be_open() -> None:
    assert date_range.parse(None, None) == date_range.Range(None, None)
    assert date_range.parse(None, "2026-02-01").start is None


@pytest.mark.parametrize(
    ("start", "end", "param"),
    [
        ("soon", None, "from"),
        (None, "2026-02-30", "to"),
        ("2026-01-10T25:00:00", None, "from"),
        ("2026-01-11", "2026-01-10", "from"),
        ("2026-01-10T12:00:00Z", "2026-01-10T12:00:00Z", "from"),
    ],
)
def test_what_is_not_a_range_is_a_400(start: str | None, end: str | None, param: str) -> None:
    with pytest.raises(errors.InvalidRequest) as refused:
        date_range.parse(start, end)
    assert refused.value.param == param
