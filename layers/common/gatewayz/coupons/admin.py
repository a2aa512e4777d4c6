"""Coupons as the platform's operators manage them (`/admin/coupons`, docs/api.md,
coupons): create, list, read, change, deactivate, and per-coupon analytics.

A coupon is never deleted: deactivating it stops new redemptions, and a percent discount
already attached to an account is still honoured (the customer was promised it). Its
code, kind, value and recipient are fixed once created; each change writes its audit
row in the same transaction.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from gatewayz import db, errors, pagination
from gatewayz.billing import amounts, money
from gatewayz.coupons import fields, views
from gatewayz.identity import audit

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

_ANALYTICS = """
SELECT count(*), count(DISTINCT r.account_id), count(DISTINCT r.user_id),
       COALESCE(sum(r.amount_nanos), 0),
       count(*) FILTER (WHERE r.status = 'attached'),
       count(*) FILTER (WHERE r.status = 'consumed'),
       COALESCE(sum(p.discount_cents) FILTER (WHERE r.status = 'consumed'), 0),
       COALESCE(sum(p.credit_nanos) FILTER (WHERE r.status = 'consumed'), 0),
       min(r.created_at), max(r.created_at)
  FROM coupon_redemptions r LEFT JOIN payments p ON p.id = r.payment_id
 WHERE r.coupon_id = %s
"""


def list_coupons(query: Mapping[str, str]) -> dict[str, Any]:
    """Coupons newest first; `active=true|false` keeps only those.

    Raises:
        InvalidRequest: `active`, `limit` or `cursor` is not valid (param named).
    """
    page = pagination.parse(query.get("limit"), query.get("cursor"), width=2)
    where, params = ["TRUE"], []
    active = query.get("active")
    if active is not None:
        if active not in ("true", "false"):
            raise errors.InvalidRequest("active must be true or false.", param="active")
        where.append("c.is_active = %s")
        params.append(active == "true")
    if page.after is not None:
        where.append("(c.created_at, c.id) < (%s, %s)")
        params += fields.cursor_after(page.after)
    rows = db.execute(
        f"""SELECT {views.COUPON_COLUMNS} FROM coupons c WHERE {" AND ".join(where)}
             ORDER BY c.created_at DESC, c.id DESC LIMIT %s""",
        (*params, page.limit + 1),
    ).fetchall()
    found = pagination.respond(
        rows, page, key=lambda row: (row[14].isoformat(), str(row[0])), shape=views.coupon
    )
    return {"object": "list", **found}


def create(body: dict[str, Any], *, actor: Principal, request: Request) -> dict[str, Any]:
    """A new coupon from `body` (`code` and `kind`, with `amount` or `percent_off`).

    Raises:
        InvalidRequest: a field is missing or not valid (param named).
        CouponExists: 409, another coupon has this code (any case).
    """
    row = fields.new(body) | {"created_by": actor.user_id}
    names = ", ".join(row)
    values = ", ".join(f"%({name})s" for name in row)
    with _conflicts(), db.transaction() as cur:
        found = cur.execute(f"INSERT INTO coupons ({names}) VALUES ({values}) RETURNING id", row)
        coupon_id = str((found.fetchone() or ("",))[0])
        created = _view(cur, coupon_id)
        audit.record(
            cur, action="coupon.create", target_type="coupon", target_id=coupon_id,
            account_id=None, principal=actor, after=created, request=request,
        )  # fmt: skip
    return created


def get(coupon_id: str) -> dict[str, Any]:
    """One coupon. Raises NotFound for an unknown id."""
    with db.transaction() as cur:
        return _view(cur, coupon_id)


def update(
    coupon_id: str, body: dict[str, Any], *, actor: Principal, request: Request
) -> dict[str, Any]:
    """Change what `body` names (description, limits, validity, is_active); the coupon.

    Raises:
        NotFound: no such coupon. InvalidRequest: a field is not valid or cannot be
            changed (param named).
    """
    with db.transaction() as cur:
        before = _view(cur, coupon_id, lock=True)
        row = fields.changes(body, current=before)
        if row:
            sets = ", ".join(f"{name} = %({name})s" for name in row)
            # Only a real change moves updated_at (and is audited).
            differ = " OR ".join(f"{name} IS DISTINCT FROM %({name})s" for name in row)
            cur.execute(
                f"""UPDATE coupons SET {sets}, updated_at = now()
                     WHERE id = %(coupon_id)s AND ({differ})""",
                {**row, "coupon_id": before["id"]},
            )
        after = _view(cur, before["id"])
        if after != before:
            audit.record(
                cur, action="coupon.update", target_type="coupon", target_id=before["id"],
                account_id=None, principal=actor, before=before, after=after, request=request,
            )  # fmt: skip
    return after


def deactivate(coupon_id: str, *, actor: Principal, request: Request) -> dict[str, Any]:
    """Stop new redemptions of the coupon (kept for its history); the coupon.

    Raises:
        NotFound: no such coupon.
    """
    return update(coupon_id, {"is_active": False}, actor=actor, request=request)


def analytics(coupon_id: str) -> dict[str, Any]:
    """What the coupon gave: redemptions, credit granted, discounts given at checkout
    and the accounts and users that redeemed it.

    Raises:
        NotFound: no such coupon.
    """
    with db.transaction() as cur:
        coupon = _view(cur, coupon_id)
        row = cur.execute(_ANALYTICS, (coupon["id"],)).fetchone()
    assert row is not None
    (count, accounts, users, granted, attached, consumed, discount_cents, purchased,
     first, last) = row  # fmt: skip
    return {
        "object": "coupon_analytics",
        "coupon_id": coupon["id"],
        "code": coupon["code"],
        "kind": coupon["kind"],
        "redemptions": count,
        "unique_accounts": accounts,
        "unique_users": users,
        "credit_granted": amounts.usd(int(granted)),
        "discounts_attached": attached,
        "discounts_used": consumed,
        "discount_given": amounts.usd(int(discount_cents) * money.NANOS_PER_USD // 100),
        "credit_purchased_with_discount": amounts.usd(int(purchased)),
        "first_redeemed_at": None if first is None else first.isoformat(),
        "last_redeemed_at": None if last is None else last.isoformat(),
    }


def _view(cur: psycopg.Cursor[Any], coupon_id: str, *, lock: bool = False) -> dict[str, Any]:
    try:
        found = str(uuid.UUID(coupon_id))
    except ValueError:
        raise errors.NotFound("No such coupon.") from None
    row = cur.execute(
        f"SELECT {views.COUPON_COLUMNS} FROM coupons c WHERE c.id = %s"
        f"{' FOR UPDATE' if lock else ''}",
        (found,),
    ).fetchone()
    if row is None:
        raise errors.NotFound("No such coupon.")
    return views.coupon(row)


@contextmanager
def _conflicts() -> Iterator[None]:
    """A code another coupon has (the unique index) is a 409."""
    try:
        yield
    except psycopg.errors.UniqueViolation:
        raise errors.CouponExists("Another coupon has this code.", param="code") from None
