"""Catalog prices the database refuses: a price that is not a finite, non-negative number
would make every request for the offer fail while it is priced."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import add_echo_model

PRICES = ("input_price", "cached_input_price", "output_price", "reasoning_price", "image_price")


@pytest.mark.parametrize("column", PRICES)
@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity", "-0.000000001"])
def test_an_offer_price_must_be_finite_and_not_negative(
    conn: psycopg.Connection, column: str, price: str
) -> None:
    model = add_echo_model()
    update = f"UPDATE model_offers SET {column} = %s::numeric WHERE model_id = %s"
    with pytest.raises((psycopg.errors.CheckViolation, psycopg.errors.NumericValueOutOfRange)):
        conn.execute(update, (price, model))


@pytest.mark.parametrize("column", PRICES)
def test_a_finite_price_is_accepted(conn: psycopg.Connection, column: str) -> None:
    model = add_echo_model()
    with conn.transaction(force_rollback=True):
        conn.execute(
            f"UPDATE model_offers SET {column} = 0.000000001 WHERE model_id = %s",
            (model,),
        )
