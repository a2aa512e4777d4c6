"""The account's ledger (`GET /v1/credits/transactions`, docs/api.md, billing): every
entry that moved its balance, newest first, cursor-paginated like every list.

An entry's `reference` is the outside fact it records (a Stripe event or session, a
coupon redemption, a trial) or, for usage, the request id (`x-request-id`, and `id` in
`GET /v1/generation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors, pagination
from gatewayz.billing import credits, date_range
from gatewayz.billing.amounts import usd

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gatewayz.identity.principal import Principal

READ_SCOPES = ("billing:read",)
KINDS = credits.GRANT_KINDS | credits.DEBIT_KINDS

_LIST = """
SELECT t.id, t.kind, t.amount_nanos, t.balance_after_nanos,
       COALESCE(t.external_ref, u.request_id), t.description, t.api_key_id, t.created_at
  FROM credit_transactions t
  LEFT JOIN usage_records u ON u.id = t.usage_record_id
 WHERE {where}
 ORDER BY t.id DESC
 LIMIT %s
"""


def list_page(principal: Principal, query: Mapping[str, str]) -> dict[str, Any]:
    """A page of the caller's account's ledger; `query` may hold `kind` (one or a comma
    list), `from`, `to`, `limit` and `cursor`.

    Raises:
        InvalidRequest: a parameter is not valid (param named).
    """
    page = pagination.parse(query.get("limit"), query.get("cursor"), width=1)
    where: list[str] = ["t.account_id = %s"]
    params: list[Any] = [principal.account_id]
    kinds = _kinds(query.get("kind"))
    if kinds is not None:
        where.append("t.kind = ANY(%s)")
        params.append(kinds)
    span = date_range.parse(query.get("from"), query.get("to"))
    if span.start is not None:
        where.append("t.created_at >= %s")
        params.append(span.start)
    if span.end is not None:
        where.append("t.created_at < %s")
        params.append(span.end)
    if page.after is not None:
        if not isinstance(page.after[0], int):
            raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor")
        where.append("t.id < %s")
        params.append(page.after[0])
    rows = db.execute(_LIST.format(where=" AND ".join(where)), (*params, page.limit + 1)).fetchall()
    return pagination.respond(rows, page, key=lambda row: (int(row[0]),), shape=_shape)


def _kinds(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    unknown = [name for name in names if name not in KINDS]
    if unknown or not names:
        raise errors.InvalidRequest(
            f"kind must be one or more (comma-separated) of {', '.join(sorted(KINDS))}.",
            param="kind",
        )
    return sorted(set(names))


def _shape(row: tuple[Any, ...]) -> dict[str, Any]:
    entry_id, kind, amount, balance_after, reference, description, key_id, created_at = row
    return {
        "id": str(entry_id),
        "object": "credit_transaction",
        "kind": kind,
        "amount": usd(amount),
        "balance_after": usd(balance_after),
        "reference": reference,
        "description": description,
        "key_id": None if key_id is None else str(key_id),
        "created_at": created_at.isoformat(),
    }
