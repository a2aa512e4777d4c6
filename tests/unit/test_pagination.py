"""Cursor pagination shared by the list routes: limits, opaque cursors, the next page."""

from __future__ import annotations

import pytest

from gatewayz import errors, pagination


def test_a_cursor_round_trips_and_is_opaque_url_safe_text() -> None:
    cursor = pagination.encode("2026-12-02T10:00:00.123456+00:00", "a-b", 7)
    assert cursor.isascii()
    assert not set(cursor) & set("+/=")
    assert pagination.decode(cursor, width=3) == ("2026-12-02T10:00:00.123456+00:00", "a-b", 7)


@pytest.mark.parametrize(
    "cursor",
    ["", "!!!", "bm90IGpzb24", pagination.encode("x"), pagination.encode("x", True),
     pagination.encode("x", None), pagination.encode("x", ["y"]), "A" * 600],
)  # fmt: skip
def test_anything_but_a_cursor_of_the_lists_width_is_a_400(cursor: str) -> None:
    with pytest.raises(errors.InvalidRequest) as raised:
        pagination.decode(cursor, width=2)
    assert raised.value.param == "cursor"


@pytest.mark.parametrize(("limit", "size"), [(None, pagination.DEFAULT_LIMIT), ("1", 1),
                                             ("100", 100)])  # fmt: skip
def test_limit_defaults_and_bounds(limit: str | None, size: int) -> None:
    assert pagination.parse(limit, None, width=2) == pagination.Page(size, None)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "ten", "", "٣"])
def test_a_bad_limit_is_a_400(limit: str) -> None:
    with pytest.raises(errors.InvalidRequest) as raised:
        pagination.parse(limit, None, width=2)
    assert raised.value.param == "limit"


def test_respond_shows_a_page_and_a_cursor_only_when_more_rows_exist() -> None:
    page = pagination.Page(limit=2, after=None)
    rows = [{"n": 3}, {"n": 2}, {"n": 1}]
    body = pagination.respond(rows, page, key=lambda row: (row["n"],), shape=dict)
    assert body["data"] == [{"n": 3}, {"n": 2}]
    assert pagination.decode(body["next_cursor"], width=1) == (2,)
    last = pagination.respond(rows[2:], page, key=lambda row: (row["n"],), shape=dict)
    assert last == {"data": [{"n": 1}], "next_cursor": None}
    assert pagination.respond([], page, key=lambda row: (row["n"],), shape=dict) == {
        "data": [],
        "next_cursor": None,
    }
