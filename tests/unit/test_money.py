"""Dollars to nano-dollars, exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gatewayz.billing.money import nanos_to_usd, usd_to_cents, usd_to_nanos


def test_exact_conversions() -> None:
    assert usd_to_nanos("10") == 10_000_000_000
    assert usd_to_nanos("0.000000001") == 1
    assert usd_to_nanos(Decimal("29.99")) == 29_990_000_000
    assert nanos_to_usd(1_500_000_000) == Decimal("1.5")
    assert usd_to_cents("29.99") == 2_999


@pytest.mark.parametrize("bad", ["0.0000000001", "nan", "inf", "abc"])
def test_fractions_of_a_nano_and_non_numbers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"nano-dollars|amount of dollars"):
        usd_to_nanos(bad)


def test_fractions_of_a_cent_are_refused() -> None:
    with pytest.raises(ValueError, match="cents"):
        usd_to_cents("0.001")
