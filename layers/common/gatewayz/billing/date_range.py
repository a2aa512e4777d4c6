"""The `from` and `to` of billing reports and lists (docs/api.md, billing): ISO dates or
date-times, read as UTC when they name no zone; a date alone as `from` is that day's
start, as `to` the end of that day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from gatewayz import errors
from gatewayz.record import record


@record
class Range:
    """From `start` (included) to `end` (excluded), either open when None."""

    start: datetime | None
    end: datetime | None


def parse(start: str | None, end: str | None) -> Range:
    """The range the query parameters `from` and `to` name.

    Raises:
        InvalidRequest: a value that is not an ISO date or date-time, or `from` after
            `to` (param named).
    """
    found = Range(_moment(start, "from", end=False), _moment(end, "to", end=True))
    if found.start is not None and found.end is not None and found.start >= found.end:
        raise errors.InvalidRequest("from must be before to.", param="from")
    return found


def _moment(value: str | None, param: str, *, end: bool) -> datetime | None:
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        if "T" in text:  # a `+` offset arrives as a space when the client did not encode it
            text = text.replace(" ", "+")
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise errors.InvalidRequest(
            f"{param} must be an ISO date (2026-01-31) or date-time (2026-01-31T12:00:00Z).",
            param=param,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
