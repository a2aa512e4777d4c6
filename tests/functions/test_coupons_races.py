"""Coupon redemptions at once, each in its own thread (so its own database connection)
through the coupons function's real handler: the coupon's row lock and the per-user
UNIQUE (coupon, user, n) keep every limit, and every grant has its ledger entry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gatewayz.billing import money
from tests import ledger
from tests.factories import new_key, new_owner
from tests.functions.coupons_api import balance, counts, coupon_entries, create, redeem
from tests.functions.operators import operator_key
from tests.overlap import run_at_once

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def outcomes(secrets: list[str], code: str) -> list[Any]:
    """Redeem `code` with every key at once; each answer's status and error code."""
    queue = list(secrets)

    def one() -> dict[str, Any]:
        reply = redeem(queue.pop(), code)
        return {"status": reply.status, "code": reply.code}

    return [(report["status"], report["code"]) for report in run_at_once(one, len(queue))]


def test_fifty_users_at_once_on_a_coupon_for_ten(conn: psycopg.Connection) -> None:
    coupon = create(operator_key()[1].secret, amount=1, max_redemptions=10)
    owners = [new_owner() for _ in range(50)]
    results = outcomes([new_key(owner).secret for owner in owners], coupon["code"])
    assert len(results) == 50
    assert results.count((201, None)) == 10
    assert results.count((400, "coupon_exhausted")) == 40
    assert counts(coupon["id"]) == (10, 10)
    granted = [owner for owner in owners if balance(owner.account_id) > 0]
    assert len(granted) == 10
    for owner in granted:
        assert balance(owner.account_id) == money.NANOS_PER_USD
        assert len(coupon_entries(owner.account_id)) == 1
    assert all(ledger.invariant_holds(conn, owner.account_id) for owner in owners)


def test_one_user_twice_at_once_gets_one_grant(conn: psycopg.Connection) -> None:
    coupon = create(operator_key()[1].secret, amount=3)
    owner = new_owner()
    key = new_key(owner)
    results = outcomes([key.secret] * 2, coupon["code"])
    assert sorted(results, key=str) == [(201, None), (400, "coupon_already_redeemed")]
    assert balance(owner.account_id) == 3 * money.NANOS_PER_USD
    assert len(coupon_entries(owner.account_id)) == 1
    assert counts(coupon["id"]) == (1, 1)
    assert ledger.invariant_holds(conn, owner.account_id)


def test_two_percent_coupons_at_once_attach_one(conn: psycopg.Connection) -> None:
    admin = operator_key()[1].secret
    first = create(admin, kind="percent", percent_off=10)
    second = create(admin, kind="percent", percent_off=15)
    key = new_key(new_owner())
    queue = [first["code"], second["code"]]

    def one() -> dict[str, Any]:
        reply = redeem(key.secret, queue.pop())
        return {"status": reply.status, "code": reply.code}

    results = sorted((r["status"], r["code"]) for r in run_at_once(one, 2))
    assert results == [(201, None), (400, "coupon_already_attached")]
    assert counts(first["id"])[0] + counts(second["id"])[0] == 1


def test_one_user_at_once_within_the_per_user_limit_gets_every_grant(
    conn: psycopg.Connection,
) -> None:
    coupon = create(operator_key()[1].secret, amount=1, max_per_user=4)
    owner = new_owner()
    key = new_key(owner)
    results = outcomes([key.secret] * 6, coupon["code"])
    assert sorted(results, key=str) == [(201, None)] * 4 + [(400, "coupon_already_redeemed")] * 2
    assert balance(owner.account_id) == 4 * money.NANOS_PER_USD
    assert len(coupon_entries(owner.account_id)) == 4
    assert counts(coupon["id"]) == (4, 4)
    assert ledger.invariant_holds(conn, owner.account_id)
