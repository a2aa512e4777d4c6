"""Cursor pagination for every list route: `?limit=&cursor=` in, `{"data": [...],
"next_cursor": ...}` out.

A cursor is opaque to clients: the sort key of the last row of a page (for example its
`created_at` and `id`), as base64url JSON. The next page is the rows after it in the
list's order, so rows added meanwhile neither repeat nor shift a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from gatewayz import errors
from gatewayz.record import record

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_CURSOR = 512


@record
class Page:
    """What a list request asked for: at most `limit` rows after the sort key `after`."""

    limit: int
    after: tuple[Any, ...] | None


def parse(limit: str | None, cursor: str | None, *, width: int) -> Page:
    """The page a request's `limit` and `cursor` query parameters ask for; `width` is how
    many values the list's sort key has.

    Raises:
        InvalidRequest: `limit` is not a whole number from 1 to MAX_LIMIT, or `cursor` is
            not one this list gave out (`param` names which).
    """
    size = DEFAULT_LIMIT
    if limit is not None:
        if not limit.isascii() or not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            raise errors.InvalidRequest(
                f"limit must be a whole number from 1 to {MAX_LIMIT}.", param="limit"
            )
        size = int(limit)
    return Page(limit=size, after=None if cursor is None else decode(cursor, width=width))


def encode(*values: Any) -> str:
    """A cursor holding `values` (JSON types)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, *, width: int) -> tuple[Any, ...]:
    """The values `encode` put in `cursor`.

    Raises:
        InvalidRequest: not a cursor of `width` values (param `cursor`).
    """
    try:
        if len(cursor) > _MAX_CURSOR:
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != width:
        raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor")
    if not all(isinstance(value, str | int) and not isinstance(value, bool) for value in values):
        raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor")
    return tuple(values)


def respond(
    rows: Sequence[Any],
    page: Page,
    *,
    key: Callable[[Any], tuple[Any, ...]],
    shape: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """The response body for `rows`, fetched as up to `page.limit + 1` rows: the extra row
    only tells that another page exists, and `key` of the page's last row is its cursor."""
    shown = rows[: page.limit]
    more = len(rows) > page.limit
    return {
        "data": [shape(row) for row in shown],
        "next_cursor": encode(*key(shown[-1])) if more and shown else None,
    }
