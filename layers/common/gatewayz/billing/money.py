"""Money as integer nano-dollars (docs/architecture.md, money): 1 USD = 1_000_000_000
nanos. Never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000


def usd_to_nanos(usd: str | int | Decimal) -> int:
    """Exact dollars to nanos.

    Raises:
        ValueError: the amount is not a number or has a fraction of a nano-dollar.
    """
    amount = _decimal(usd) * NANOS_PER_USD
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError(f"{usd!r} is not a whole number of nano-dollars")
    return int(amount)


def nanos_to_usd(nanos: int) -> Decimal:
    """Nanos to exact dollars (a Decimal; JSON responses turn it into a number)."""
    return Decimal(nanos) / NANOS_PER_USD


def usd_to_cents(usd: str | int | Decimal) -> int:
    """Exact dollars to cents (Stripe amounts).

    Raises:
        ValueError: the amount is not a whole number of cents.
    """
    amount = _decimal(usd) * 100
    if not amount.is_finite() or amount != amount.to_integral_value():
        raise ValueError(f"{usd!r} is not a whole number of cents")
    return int(amount)


def _decimal(usd: str | int | Decimal) -> Decimal:
    try:
        return Decimal(str(usd))
    except InvalidOperation:
        raise ValueError(f"{usd!r} is not an amount of dollars") from None
