"""The account's credits at a glance (`GET /v1/credits`, docs/api.md, billing).

`balance` is what new requests can spend; `held` is what requests in flight hold until
they settle. `total_credits` sums every grant the ledger holds (trial, purchases,
subscription credit, coupons, referrals, operators' grants); `total_usage` sums what
requests were charged; `total_removed` sums every other debit (refunds, disputes,
operators' debits, trial credit removed at the trial's end). So always
`balance + held == total_credits - total_usage - total_removed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing import credits
from gatewayz.billing.amounts import usd

if TYPE_CHECKING:
    from gatewayz.identity.principal import Principal

READ_SCOPES = ("billing:read",)
CURRENCY = "usd"

_SUMMARY = """
SELECT a.balance_nanos,
       COALESCE((SELECT sum(h.amount_nanos) FROM credit_holds h WHERE h.account_id = a.id), 0),
       COALESCE(t.granted, 0), COALESCE(t.used, 0), COALESCE(t.removed, 0),
       a.monthly_spend_limit_nanos,
       CASE WHEN a.month_spent_since < date_trunc('month', now() AT TIME ZONE 'UTC')
                                       AT TIME ZONE 'UTC'
            THEN 0 ELSE a.month_spent_nanos END
  FROM accounts a
  LEFT JOIN LATERAL (
       SELECT sum(c.amount_nanos) FILTER (WHERE c.kind = ANY(%(grants)s)) AS granted,
              -sum(c.amount_nanos) FILTER (WHERE c.kind = 'usage') AS used,
              -sum(c.amount_nanos) FILTER (WHERE c.kind <> 'usage' AND c.amount_nanos < 0)
                  AS removed
         FROM credit_transactions c WHERE c.account_id = a.id) t ON TRUE
 WHERE a.id = %(account)s
"""


def summary(principal: Principal) -> dict[str, Any]:
    """The caller's account's credits, in USD.

    Raises:
        AccountNotFound: the account is gone (closed accounts still answer).
    """
    row = db.execute(
        _SUMMARY, {"account": principal.account_id, "grants": sorted(credits.GRANT_KINDS)}
    ).fetchone()
    if row is None:
        raise errors.AccountNotFound("No such account.")
    balance, held, granted, used, removed, limit, month_spent = (
        int(v) if v is not None else None for v in row
    )
    return {
        "object": "credits",
        "currency": CURRENCY,
        "balance": usd(balance),
        "held": usd(held),
        "total_credits": usd(granted),
        "total_usage": usd(used),
        "total_removed": usd(removed),
        "monthly_spend_limit": usd(limit),
        "month_spent": usd(month_spent),
    }
