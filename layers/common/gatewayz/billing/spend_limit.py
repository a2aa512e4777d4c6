"""The account's monthly spending limit (docs/api.md, spending controls), as the chat
path reports it.

The limit itself is enforced where credits are held (`reserve_credits`, infra/
migrations/0019): a request that cannot fit in what is left of this UTC month's limit
is refused with the reason `spend_limit`. This module only words that refusal.
"""

from __future__ import annotations

from gatewayz import db
from gatewayz.billing import money

SETTINGS_PATH = "/v1/billing/settings"


def reached_message(account_id: str) -> str:
    """The message of a request refused for the monthly limit (read on refusal only,
    so the request path pays no round trip for it)."""
    row = db.execute(
        "SELECT monthly_spend_limit_nanos FROM accounts WHERE id = %s", (account_id,)
    ).fetchone()
    limit = None if row is None or row[0] is None else int(row[0])
    amount = "" if limit is None else f" of ${usd_text(limit)}"
    return f"This account's monthly spending limit{amount} is reached; raise it in {SETTINGS_PATH}."


def usd_text(nanos: int) -> str:
    """Dollars as text for a message: at least cents, and every nano that is there."""
    text = f"{money.nanos_to_usd(nanos):.9f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"
