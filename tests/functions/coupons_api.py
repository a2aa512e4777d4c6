"""Calling the coupons function's routes as API Gateway does (a real REST event through
its Mangum handler), and arranging coupons through `/admin/coupons`."""

from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any

from gatewayz import db
from tests.functions import keys_api

if TYPE_CHECKING:
    from tests.functions.keys_api import Reply

call = functools.partial(keys_api.call, group="coupons")


def new_code() -> str:
    """A fresh code, in lower case (codes are stored upper-case)."""
    return f"test-{uuid.uuid4().hex[:12]}"


def create(admin_secret: str, **fields: Any) -> dict[str, Any]:
    """A coupon made through `POST /admin/coupons` (a $5 credit coupon unless `fields`
    say otherwise)."""
    body = {"code": new_code(), "kind": "credit", "amount": 5, **fields}
    if body["kind"] == "percent":
        body.pop("amount", None)
    created = call("POST", "/admin/coupons", admin_secret, body)
    assert created.status == 201, created.raw
    data: dict[str, Any] = created.body["data"]
    return data


def redeem(secret: str, code: Any) -> Reply:
    return call("POST", "/v1/coupons/redeem", secret, {"code": code})


def balance(account_id: str) -> int:
    row = db.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def coupon_entries(account_id: str) -> list[tuple[Any, ...]]:
    """(amount_nanos, external_ref) of the account's coupon ledger entries, oldest first."""
    return db.execute(
        """SELECT amount_nanos, external_ref FROM credit_transactions
            WHERE account_id = %s AND kind = 'coupon' ORDER BY id""",
        (account_id,),
    ).fetchall()


def counts(coupon_id: str) -> tuple[int, int]:
    """(the coupon's redemption_count, its redemption rows)."""
    row = db.execute(
        """SELECT redemption_count, (SELECT count(*) FROM coupon_redemptions
                                      WHERE coupon_id = c.id)
             FROM coupons c WHERE id = %s""",
        (coupon_id,),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
