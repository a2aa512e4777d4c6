"""The account's usage over a date range (`GET /v1/usage`, docs/api.md, billing): requests,
tokens and cost from `usage_records`, grouped by day, model, key, member and/or provider,
as JSON or as CSV for a spreadsheet.

Days are UTC days. A member is the user whose key made the request (a team's usage per
person). Cost is what the requests were charged, in USD.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing import date_range, money
from gatewayz.billing.amounts import usd
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gatewayz.identity.principal import Principal

READ_SCOPES = ("billing:read",)
DEFAULT_DAYS = 30
MAX_DAYS = 366
FORMATS = ("json", "csv")

# Each grouping: the columns it adds to a row, as (name, SQL expression).
DIMENSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "day": (("day", "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),),
    "model": (("model", "u.model"),),
    "key": (("key_id", "u.api_key_id::text"), ("key_name", "k.name")),
    "member": (("user_id", "k.user_id::text"), ("email", "m.email")),
    "provider": (("provider", "u.provider"),),
}
METRICS: tuple[tuple[str, str], ...] = (
    ("requests", "count(*)"),
    ("input_tokens", "sum(u.input_tokens)"),
    ("cached_input_tokens", "sum(u.cached_input_tokens)"),
    ("output_tokens", "sum(u.output_tokens)"),
    ("reasoning_tokens", "sum(u.reasoning_tokens)"),
    ("images", "sum(u.images)"),
    ("cost", "sum(u.cost_nanos - u.uncollected_nanos)"),  # what was charged, in nanos
)
# A spreadsheet runs a cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@record
class Report:
    """Grouped usage rows (metric `cost` in nanos) and their totals."""

    start: datetime
    end: datetime
    group_by: tuple[str, ...]
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    totals: tuple[int, ...]


def report(principal: Principal, query: Mapping[str, str]) -> Report:
    """The caller's account's usage for `query`'s `from`, `to` and `group_by`.

    Raises:
        InvalidRequest: a parameter is not valid (param named).
    """
    start, end = _span(query.get("from"), query.get("to"))
    group_by = _group_by(query.get("group_by"))
    dims = [column for name in group_by for column in DIMENSIONS[name]]
    select = ", ".join([*(sql for _, sql in dims), *(sql for _, sql in METRICS)])
    grouping = ", ".join(sql for _, sql in dims)
    rows = db.execute(
        f"""SELECT {select}
              FROM usage_records u
              LEFT JOIN api_keys k ON k.id = u.api_key_id
              LEFT JOIN users m ON m.id = k.user_id
             WHERE u.account_id = %s AND u.created_at >= %s AND u.created_at < %s
             GROUP BY {grouping} ORDER BY {grouping}""",
        (principal.account_id, start, end),
    ).fetchall()
    width = len(dims)
    shaped = [(*row[:width], *(int(v or 0) for v in row[width:])) for row in rows]
    totals = tuple(sum(row[width + i] for row in shaped) for i in range(len(METRICS)))
    columns = (*(name for name, _ in dims), *(name for name, _ in METRICS))
    return Report(start, end, group_by, columns, shaped, totals)


def output_format(value: str | None) -> str:
    """`json` (the default) or `csv`. Raises InvalidRequest (param `format`) otherwise."""
    if value is None:
        return "json"
    if value not in FORMATS:
        raise errors.InvalidRequest("format must be json or csv.", param="format")
    return value


def as_json(found: Report) -> dict[str, Any]:
    """The report as the JSON answer: rows as objects, cost in USD."""
    metrics = [name for name, _ in METRICS]
    return {
        "object": "usage",
        "from": found.start.isoformat(),
        "to": found.end.isoformat(),
        "group_by": list(found.group_by),
        "data": [_record(found.columns, row) for row in found.rows],
        "total": _record(tuple(metrics), found.totals),
    }


def as_csv(found: Report) -> str:
    """The report as CSV with a header row; cost in USD as an exact decimal, and text
    that a spreadsheet would run as a formula quoted with a leading `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(found.columns)
    for row in found.rows:
        cells = [_cell(value) for value in row]
        cells[-1] = format(money.nanos_to_usd(int(row[-1])), "f")
        writer.writerow(cells)
    return out.getvalue()


def filename(found: Report) -> str:
    """A name for the CSV download."""
    return f"usage-{found.start:%Y%m%d}-{found.end:%Y%m%d}.csv"


def _record(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(columns, row, strict=True))
    record["cost"] = usd(int(record["cost"]))
    return record


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _span(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    chosen = date_range.parse(start, end)
    until = chosen.end or datetime.now(UTC)
    since = chosen.start or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise errors.InvalidRequest("from must be before to.", param="from")
    if until - since > timedelta(days=MAX_DAYS):
        raise errors.InvalidRequest(
            f"The range from `from` to `to` may span at most {MAX_DAYS} days.", param="from"
        )
    return since, until


def _group_by(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ("day",)
    names = [name.strip() for name in value.split(",")]
    if not names or any(name not in DIMENSIONS for name in names) or len(set(names)) < len(names):
        raise errors.InvalidRequest(
            f"group_by must be one or more (comma-separated, each once) of "
            f"{', '.join(DIMENSIONS)}.",
            param="group_by",
        )
    return tuple(names)
