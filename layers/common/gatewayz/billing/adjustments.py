"""Credits granted or taken by the platform's operators (`POST /admin/credits`,
`gatewayz admin grant`): one ledger entry, `admin_grant` or `admin_debit`, with the
operator's reason, and its audit row in the same transaction.

A debit never takes the balance below zero. With an idempotency key the entry carries a
reference unique to the operator and that key, so a retried request posts nothing more
and answers the first entry; the same key with another account, amount or reason is a
conflict.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing import credits, money
from gatewayz.identity import audit
from gatewayz.record import record

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

MAX_USD = 1_000_000  # per entry: far beyond any real adjustment, far inside BIGINT nanos
REASON_MAX = 500
KEY_MAX = 255

_ENTRY = """
SELECT id, account_id, kind, amount_nanos, balance_after_nanos, description, created_at
  FROM credit_transactions WHERE {} = %s
"""


@record
class Adjustment:
    """A posted entry as the API shows it, and whether an earlier request posted it."""

    data: dict[str, Any]
    replayed: bool = False


def adjust(
    account_id: Any,
    amount: Any,
    reason: Any,
    *,
    actor: Principal | None,
    idempotency_key: str | None = None,
    request: Request | None = None,
) -> Adjustment:
    """Grant (`amount` > 0) or debit (`amount` < 0) `amount` USD to the account.
    `actor` None is the operator's command line (`system`).

    Raises:
        InvalidRequest: a field is not valid, or a debit exceeds the balance (param named).
        NotFound: no such account (param `account_id`).
        Conflict: 409 `idempotency_conflict`, the key was used for another adjustment.
    """
    account = _account_id(account_id)
    nanos = _nanos(amount)
    text = _reason(reason)
    ref = _reference(actor, idempotency_key)
    kind = "admin_grant" if nanos > 0 else "admin_debit"
    with db.transaction() as cur:
        if ref is not None:
            earlier = _earlier(cur, ref, account, nanos, text)
            if earlier is not None:
                return earlier
        if cur.execute("SELECT 1 FROM accounts WHERE id = %s", (account,)).fetchone() is None:
            raise errors.NotFound("No such account.", param="account_id")
        try:
            entry = credits.post(
                cur, account_id=account, kind=kind, amount_nanos=nanos, external_ref=ref,
                idempotency_key=ref, description=text,
                actor_user_id=actor.user_id if actor else None,
            )  # fmt: skip
        except credits.InsufficientFunds:
            raise errors.InvalidRequest(
                "A debit may not take the balance below zero.", param="amount"
            ) from None
        if entry is None:  # a concurrent request with the same key posted first
            assert ref is not None
            replay = _earlier(cur, ref, account, nanos, text)
            assert replay is not None
            return replay
        data = _shape(_entry(cur, "id", entry))
        audit.record(
            cur, action=f"credits.{kind}", target_type="account", target_id=account,
            account_id=account, principal=actor, actor_kind=None if actor else "system",
            after={"transaction_id": data["id"], "amount": data["amount"],
                   "balance_after": data["balance_after"], "reason": text},
            request=request,
        )  # fmt: skip
    return Adjustment(data)


def _earlier(
    cur: psycopg.Cursor[Any], ref: str, account: str, nanos: int, reason: str
) -> Adjustment | None:
    """The entry posted earlier with this reference, if any.

    Raises:
        Conflict: it was posted with another account, amount or reason.
    """
    row = cur.execute(_ENTRY.format("external_ref"), (ref,)).fetchone()
    if row is None:
        return None
    if (str(row[1]), int(row[3]), row[5]) != (account, nanos, reason):
        raise errors.Conflict(
            "This Idempotency-Key was used with another account, amount or reason."
        )
    return Adjustment(_shape(row), replayed=True)


def _entry(cur: psycopg.Cursor[Any], column: str, value: Any) -> tuple[Any, ...]:
    row = cur.execute(_ENTRY.format(column), (value,)).fetchone()
    assert row is not None
    return tuple(row)


def _shape(row: tuple[Any, ...]) -> dict[str, Any]:
    entry_id, account_id, kind, amount, balance_after, reason, created_at = row
    return {
        "id": str(entry_id),
        "object": "credit_transaction",
        "account_id": str(account_id),
        "kind": kind,
        "amount": float(money.nanos_to_usd(int(amount))),
        "balance_after": float(money.nanos_to_usd(int(balance_after))),
        "reason": reason,
        "created_at": created_at.isoformat(),
    }


def _reference(actor: Principal | None, key: str | None) -> str | None:
    if key is None:
        return None
    if not key.strip() or len(key) > KEY_MAX or not key.isprintable():
        raise errors.InvalidRequest(
            f"Idempotency-Key must be 1 to {KEY_MAX} printable characters.",
            param="Idempotency-Key",
        )
    return f"admin_credit:{actor.user_id if actor else 'system'}:{key}"


def _account_id(value: Any) -> str:
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        raise errors.InvalidRequest(
            "account_id must be an account id.", param="account_id"
        ) from None


def _nanos(value: Any) -> int:
    """USD (a JSON number, or a decimal string) as exact nanos."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        nanos = None
    else:
        try:
            nanos = money.usd_to_nanos(str(value))
        except ValueError:
            nanos = None
    if nanos is None or nanos == 0 or abs(nanos) > MAX_USD * money.NANOS_PER_USD:
        raise errors.InvalidRequest(
            f"amount must be a non-zero number of USD, at most {MAX_USD:,} either way, "
            "in whole nano-dollars.",
            param="amount",
        )
    return nanos


def _reason(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > REASON_MAX:
        raise errors.InvalidRequest(
            f"reason must be a non-blank string of at most {REASON_MAX} characters.",
            param="reason",
        )
    return value.strip()
