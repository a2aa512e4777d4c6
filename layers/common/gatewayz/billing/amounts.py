"""Dollar amounts at the billing API's edge (docs/api.md, billing): a JSON number or a
decimal string in, exact nanos inside, a JSON number out."""

from __future__ import annotations

from typing import Any

from gatewayz import errors
from gatewayz.billing import money

MAX_USD = 1_000_000  # far beyond any real setting, far inside BIGINT nanos


def usd(nanos: int | None) -> float | None:
    """Nanos as dollars for a JSON answer (exact: at most 9 decimals, printed shortest)."""
    return None if nanos is None else float(money.nanos_to_usd(int(nanos)))


def nanos(value: Any, param: str, *, positive: bool = False, cents: bool = False) -> int:
    """A USD amount from a request as nanos: at least 0 (above 0 if `positive`), at most
    MAX_USD, in whole nano-dollars (whole cents if `cents`).

    Raises:
        InvalidRequest: anything else (param `param`).
    """
    found: int | None = None
    if not isinstance(value, bool) and isinstance(value, int | float | str):
        try:
            found = money.usd_to_nanos(str(value).strip())
            if cents:
                money.usd_to_cents(str(value).strip())
        except ValueError:
            found = None
    low = "above 0" if positive else "at least 0"
    unit = "whole cents" if cents else "whole nano-dollars"
    if (
        found is None
        or found < 0
        or (positive and found == 0)
        or found > MAX_USD * money.NANOS_PER_USD
    ):
        raise errors.InvalidRequest(
            f"{param} must be an amount of USD {low}, at most {MAX_USD:,}, in {unit}.",
            param=param,
        )
    return found
