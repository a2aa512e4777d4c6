"""Redeeming a coupon (`POST /v1/coupons/redeem`, docs/api.md, coupons) and the
caller's redemptions (`GET /v1/coupons/redemptions`).

One transaction locks the coupon's row, checks every rule, writes the redemption (the
user's n-th of this coupon: UNIQUE (coupon, user, n), n <= max_per_user), counts it on
the coupon and, for a credit coupon, posts the grant to the ledger under the
redemption's id. Any refusal rolls all of it back; concurrent redemptions of one coupon
queue on its row lock, so a limit of 10 grants exactly 10.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from gatewayz import db, errors, pagination
from gatewayz.billing import credits
from gatewayz.coupons import fields, views
from gatewayz.identity import audit

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

SCOPES = ("coupons",)
FIELDS = frozenset({"code"})
_ATTACHED = "A discount coupon is already waiting for this account's next credit purchase."
_REDEEMED = "You have redeemed this coupon as many times as it allows."

# The coupon, locked, with what the rules need: whether now is inside its window, and
# whether it is for this user.
_LOCK = """
SELECT c.id, c.code, c.kind, c.amount_nanos, c.percent_off, c.is_active,
       c.valid_from > now(), c.expires_at <= now(),
       c.max_redemptions IS NOT NULL AND c.redemption_count >= c.max_redemptions,
       c.max_per_user,
       (c.user_id IS NULL OR c.user_id = u.id) AND (c.email IS NULL OR c.email = lower(u.email))
  FROM coupons c, users u
 WHERE c.code = %s AND u.id = %s
   FOR UPDATE OF c
"""
# How often this user redeemed it already: a statement of its own, after the lock, so it
# sees the redemptions committed while this one waited for it (a subquery of `_LOCK`
# would count with the snapshot taken before the wait).
_USED = "SELECT count(*) FROM coupon_redemptions WHERE coupon_id = %s AND user_id = %s"


def redeem(caller: Principal, body: Any, *, request: Request | None = None) -> dict[str, Any]:
    """Redeem the coupon `body["code"]` for the caller's account; the redemption.

    Raises:
        InvalidRequest: the body is not `{"code": ...}`. CouponNotFound, CouponInactive,
            CouponNotYetValid, CouponExpired, CouponNotForYou, CouponAlreadyRedeemed,
            CouponExhausted, CouponAlreadyAttached: 400 (param `code`), nothing changed.
    """
    code = _code(body)
    with _raced(), db.transaction() as cur:
        locked = cur.execute(_LOCK, (code, caller.user_id)).fetchone()
        if locked is None:
            raise errors.CouponNotFound("No coupon has this code.", param="code")
        used_row = cur.execute(_USED, (locked[0], caller.user_id)).fetchone()
        row = (*locked, int(used_row[0]) if used_row else 0)
        coupon_id, code, kind, amount_nanos, percent_off, *_, max_per_user, _mine, used = row
        _check(cur, caller, row)
        found = cur.execute(
            """INSERT INTO coupon_redemptions (coupon_id, account_id, user_id, n, max_per_user,
                                               kind, status, amount_nanos, percent_off)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (coupon_id, caller.account_id, caller.user_id, used + 1, max_per_user, kind,
             "granted" if kind == "credit" else "attached", amount_nanos, percent_off),
        ).fetchone()  # fmt: skip
        assert found is not None
        redemption_id = str(found[0])
        cur.execute(
            "UPDATE coupons SET redemption_count = redemption_count + 1 WHERE id = %s",
            (coupon_id,),
        )
        if kind == "credit":
            credits.post(
                cur, account_id=caller.account_id, kind="coupon", amount_nanos=amount_nanos,
                external_ref=f"coupon_redemption:{redemption_id}", actor_user_id=caller.user_id,
                description=f"Coupon {code}",
                metadata={"coupon_id": str(coupon_id), "redemption_id": redemption_id},
            )  # fmt: skip
        redeemed = _view(cur, caller.account_id, redemption_id)
        audit.record(
            cur, action="coupon.redeem", target_type="coupon", target_id=str(coupon_id),
            account_id=caller.account_id, principal=caller, after=redeemed, request=request,
        )  # fmt: skip
    return redeemed


def list_redemptions(caller: Principal, query: Mapping[str, str]) -> dict[str, Any]:
    """The caller's account's redemptions, newest first.

    Raises:
        InvalidRequest: `limit` or `cursor` is not valid (param named).
    """
    page = pagination.parse(query.get("limit"), query.get("cursor"), width=2)
    where = ["r.account_id = %s"]
    params: list[Any] = [caller.account_id]
    if page.after is not None:
        where.append("(r.created_at, r.id) < (%s, %s)")
        params += fields.cursor_after(page.after)
    rows = db.execute(
        f"""SELECT {views.REDEMPTION_COLUMNS} FROM {views.REDEMPTION_FROM}
             WHERE {" AND ".join(where)} ORDER BY r.created_at DESC, r.id DESC LIMIT %s""",
        (*params, page.limit + 1),
    ).fetchall()
    found = pagination.respond(
        rows, page, key=lambda row: (row[10].isoformat(), str(row[0])), shape=views.redemption
    )
    return {"object": "list", **found}


def _check(cur: psycopg.Cursor[Any], caller: Principal, row: tuple[Any, ...]) -> None:
    """Raise the first rule the coupon breaks for the caller, if any."""
    (_, _, kind, _, _, active, early, late, exhausted, max_per_user, mine, used) = row
    if not active:
        raise errors.CouponInactive("This coupon is no longer active.", param="code")
    if early:
        raise errors.CouponNotYetValid("This coupon is not valid yet.", param="code")
    if late:
        raise errors.CouponExpired("This coupon has expired.", param="code")
    if not mine:
        raise errors.CouponNotForYou("This coupon was issued to someone else.", param="code")
    if used >= max_per_user:
        raise errors.CouponAlreadyRedeemed(_REDEEMED, param="code")
    if exhausted:
        raise errors.CouponExhausted("This coupon has been fully redeemed.", param="code")
    if (
        kind == "percent"
        and cur.execute(
            """SELECT 1 FROM coupon_redemptions WHERE account_id = %s AND status = 'attached'""",
            (caller.account_id,),
        ).fetchone()
    ):
        raise errors.CouponAlreadyAttached(_ATTACHED, param="code")


@contextmanager
def _raced() -> Iterator[None]:
    """A concurrent redemption that won a unique index (the same user's n-th redemption,
    or another percent coupon attached to the account meanwhile) is the same refusal."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == "coupon_redemptions_one_attached":
            raise errors.CouponAlreadyAttached(_ATTACHED, param="code") from None
        raise errors.CouponAlreadyRedeemed(_REDEEMED, param="code") from None


def _code(body: Any) -> str:
    if not isinstance(body, dict):
        raise errors.InvalidRequest('The body must be a JSON object: {"code": "..."}.')
    for name in sorted(set(body) - FIELDS):
        raise errors.InvalidRequest(f"Unknown field {name!r}.", param=name)
    if "code" not in body:
        raise errors.InvalidRequest("code is required.", param="code")
    try:
        return fields.code(body["code"])
    except errors.InvalidRequest:
        if isinstance(body["code"], str):  # a well-formed request for a code that cannot exist
            raise errors.CouponNotFound("No coupon has this code.", param="code") from None
        raise


def _view(cur: psycopg.Cursor[Any], account_id: str, redemption_id: str) -> dict[str, Any]:
    row = cur.execute(
        f"""SELECT {views.REDEMPTION_COLUMNS} FROM {views.REDEMPTION_FROM}
             WHERE r.id = %s AND r.account_id = %s""",
        (redemption_id, account_id),
    ).fetchone()
    assert row is not None
    return views.redemption(row)
