"""Plans as the platform's operators manage them (`/admin/plans`, docs/api.md, billing):
list every plan (hidden ones too), create one, read one, change one.

A change to a plan's limits applies on the next request of every account on it: the
database bumps those accounts' auth_version in the same transaction (infra/migrations/
0019), and once committed the new versions are announced to every warm function. Each
change writes its audit row. A subscription plan without a Stripe price may exist; it
cannot be bought until one is set.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from gatewayz import db, errors
from gatewayz.billing import amounts, money, plans
from gatewayz.identity import audit, auth

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

KINDS = ("trial", "free", "subscription", "payg")
NAME_MAX = 200
DESCRIPTION_MAX = 2000
ID_MAX = 64
LIMIT_MAX = 2_147_483_647  # the columns are integers
_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
_PRICE_ID = re.compile(r"^price_[A-Za-z0-9_]{1,200}$")
_CHANGEABLE = {
    "name", "description", "monthly_price", "included_credit", "trial_days", "limits",
    "stripe_price_id", "is_public", "sort_order",
}  # fmt: skip


def list_plans() -> dict[str, Any]:
    """Every plan, public or not, in display order."""
    rows = db.execute(f"SELECT {plans.COLUMNS} FROM plans ORDER BY sort_order, id").fetchall()
    return {"object": "list", "data": [view(row) for row in rows]}


def get(plan_id: str) -> dict[str, Any]:
    """One plan. Raises NotFound for an unknown id."""
    with db.transaction() as cur:
        return view(_row(cur, plan_id))


def create(body: dict[str, Any], *, actor: Principal, request: Request) -> dict[str, Any]:
    """A new plan from `body` (`id`, `name`, `kind` and `limits` required).

    Raises:
        InvalidRequest: a field is missing or not valid (param named).
        PlanConflict: 409, the id or the Stripe price is another plan's.
    """
    for name in sorted(set(body) - _CHANGEABLE - {"id", "kind"}):
        raise errors.InvalidRequest(f"{name} is not a plan field.", param=name)
    plan_id = body.get("id")
    if not isinstance(plan_id, str) or len(plan_id) > ID_MAX or not _ID.match(plan_id):
        raise errors.InvalidRequest(
            f"id must be lowercase letters, digits, - and _ (a letter first), at most {ID_MAX}.",
            param="id",
        )
    kind = body.get("kind")
    if kind not in KINDS:
        raise errors.InvalidRequest(f"kind must be one of {', '.join(KINDS)}.", param="kind")
    for required in ("name", "limits"):
        if required not in body:
            raise errors.InvalidRequest(f"{required} is required.", param=required)
    row = _columns(body, kind=kind, current=None)
    row |= {"id": plan_id, "kind": kind}
    names = ", ".join(row)
    values = ", ".join(f"%({name})s" for name in row)
    with _conflicts(), db.transaction() as cur:
        cur.execute(f"INSERT INTO plans ({names}) VALUES ({values})", row)
        created = view(_row(cur, plan_id))
        _audit(cur, actor, request, "plan.create", plan_id, None, created)
    return created


def update(
    plan_id: str, body: dict[str, Any], *, actor: Principal, request: Request
) -> dict[str, Any]:
    """Change the fields `body` names; the plan as it is now.

    Raises:
        NotFound: no such plan. InvalidRequest: a field is not valid or cannot be
            changed (param named). PlanConflict: 409, the Stripe price is another plan's.
    """
    for name in body:
        if name not in _CHANGEABLE:
            raise errors.InvalidRequest(f"{name} cannot be changed.", param=name)
    with _conflicts(), db.transaction() as cur:
        before = view(_row(cur, plan_id, lock=True))
        changes = _columns(body, kind=before["kind"], current=before)
        if changes:
            sets = ", ".join(f"{name} = %({name})s" for name in changes)
            cur.execute(
                f"UPDATE plans SET {sets}, updated_at = now() WHERE id = %(plan_id)s",
                {**changes, "plan_id": plan_id},
            )
        after = view(_row(cur, plan_id))
        if changes:
            _audit(cur, actor, request, "plan.update", plan_id, before, after)
    if after["limits"] != before["limits"]:
        _announce(plan_id)
    return after


def view(row: tuple[Any, ...]) -> dict[str, Any]:
    """A plan as operators see it: the public view and how it is sold and shown."""
    *_, stripe_price_id, is_public, sort_order, created_at, updated_at = row
    return {
        **plans.shape(row),
        "stripe_price_id": stripe_price_id,
        "is_public": is_public,
        "sort_order": sort_order,
        "created_at": created_at.isoformat(),
        "updated_at": updated_at.isoformat(),
    }


def _columns(body: dict[str, Any], *, kind: str, current: dict[str, Any] | None) -> dict[str, Any]:
    """The plans columns `body` sets, checked; `current` is the plan being changed."""
    row: dict[str, Any] = {}
    if "name" in body:
        row["name"] = _text(body["name"], "name", NAME_MAX, blank=False)
    if "description" in body:
        row["description"] = _text(body["description"], "description", DESCRIPTION_MAX)
    if "monthly_price" in body or current is None:
        price = amounts.nanos(body.get("monthly_price", 0), "monthly_price", cents=True)
        cents = price * 100 // money.NANOS_PER_USD
        if kind == "subscription" and cents == 0:
            raise errors.InvalidRequest(
                "A subscription plan needs a monthly_price above 0.", param="monthly_price"
            )
        row["monthly_price_cents"] = cents
    if "included_credit" in body:
        row["included_credit_nanos"] = amounts.nanos(body["included_credit"], "included_credit")
    if "trial_days" in body or current is None:
        row["trial_days"] = _trial_days(body.get("trial_days"), kind)
    if "limits" in body:
        row |= _limits(body["limits"], partial=current is not None)
    if "stripe_price_id" in body:
        price = body["stripe_price_id"]
        if price is not None and (not isinstance(price, str) or not _PRICE_ID.match(price)):
            raise errors.InvalidRequest(
                "stripe_price_id must be a Stripe price id (price_...) or null.",
                param="stripe_price_id",
            )
        row["stripe_price_id"] = price
    if "is_public" in body:
        if not isinstance(body["is_public"], bool):
            raise errors.InvalidRequest("is_public must be true or false.", param="is_public")
        row["is_public"] = body["is_public"]
    if "sort_order" in body:
        order = body["sort_order"]
        if isinstance(order, bool) or not isinstance(order, int) or abs(order) > LIMIT_MAX:
            raise errors.InvalidRequest("sort_order must be a whole number.", param="sort_order")
        row["sort_order"] = order
    return row


def _limits(value: Any, *, partial: bool) -> dict[str, int]:
    if not isinstance(value, dict):
        raise errors.InvalidRequest("limits must be an object.", param="limits")
    found: dict[str, int] = {}
    for name, number in value.items():
        if name not in plans.LIMITS:
            raise errors.InvalidRequest(f"{name} is not a plan limit.", param=f"limits.{name}")
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number <= LIMIT_MAX:
            raise errors.InvalidRequest(
                f"limits.{name} must be a whole number above 0.", param=f"limits.{name}"
            )
        found[name] = number
    missing = [name for name in plans.LIMITS if name not in found]
    if missing and not partial:
        raise errors.InvalidRequest(
            f"limits.{missing[0]} is required.", param=f"limits.{missing[0]}"
        )
    return found


def _trial_days(value: Any, kind: str) -> int | None:
    if kind != "trial":
        if value is not None:
            raise errors.InvalidRequest("Only a trial plan has trial_days.", param="trial_days")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 366:
        raise errors.InvalidRequest(
            "A trial plan needs trial_days, a whole number from 1 to 366.", param="trial_days"
        )
    return value


def _text(value: Any, param: str, limit: int, *, blank: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit or (not blank and not value.strip()):
        raise errors.InvalidRequest(
            f"{param} must be a{'' if blank else ' non-blank'} string of at most {limit} "
            "characters.",
            param=param,
        )
    return value.strip()


def _row(cur: psycopg.Cursor[Any], plan_id: str, *, lock: bool = False) -> tuple[Any, ...]:
    row = cur.execute(
        f"SELECT {plans.COLUMNS} FROM plans WHERE id = %s{' FOR UPDATE' if lock else ''}",
        (plan_id,),
    ).fetchone()
    if row is None:
        raise errors.NotFound("No such plan.")
    return tuple(row)


@contextmanager
def _conflicts() -> Iterator[None]:
    """Turn a unique violation (the id or the Stripe price is taken) into a 409."""
    try:
        yield
    except psycopg.errors.UniqueViolation:
        raise errors.PlanConflict("Another plan has this id or this stripe_price_id.") from None


def _announce(plan_id: str) -> None:
    """Publish the new auth_version of every account on the plan, so warm functions
    drop the limits they cached."""
    rows = db.execute(
        "SELECT id::text, auth_version FROM accounts WHERE plan_id = %s", (plan_id,)
    ).fetchall()
    for account_id, version in rows:
        auth.announce(account_id, int(version))


def _audit(
    cur: psycopg.Cursor[Any],
    actor: Principal,
    request: Request,
    action: str,
    plan_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    audit.record(
        cur, action=action, target_type="plan", target_id=plan_id, account_id=None,
        principal=actor, before=before, after=after, request=request,
    )  # fmt: skip
