"""The fields of a coupon as operators send them (docs/api.md, coupons), checked and
turned into `coupons` columns. Every bad value is a 400 naming its field."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from gatewayz import config, db, errors
from gatewayz.billing import amounts, money

KINDS = ("credit", "percent")
CODE = re.compile(r"^[A-Z0-9_-]{3,64}$")
DESCRIPTION_MAX = 2000
EMAIL_MAX = 320
COUNT_MAX = 2_147_483_647  # integer columns
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Fields a coupon is created with; the ones after `kind`'s value and the code can change.
CHANGEABLE = frozenset(
    {"description", "max_redemptions", "max_per_user", "valid_from", "valid_until", "is_active"}
)
CREATE_ONLY = frozenset({"code", "kind", "amount", "percent_off", "user_id", "email"})


def code(value: Any, *, param: str = "code") -> str:
    """A coupon code as stored: trimmed, upper-case (codes are case-insensitive).

    Raises:
        InvalidRequest: not 3 to 64 letters, digits, `-` or `_`.
    """
    found = value.strip().upper() if isinstance(value, str) else None
    if found is None or not CODE.match(found):
        raise errors.InvalidRequest(
            "code must be 3 to 64 letters, digits, - and _ (case does not matter).", param=param
        )
    return found


def new(body: dict[str, Any]) -> dict[str, Any]:
    """The columns of a new coupon from the create body.

    Raises:
        InvalidRequest: a field is unknown, missing or not valid (param named).
    """
    for name in sorted(set(body) - CHANGEABLE - CREATE_ONLY):
        raise errors.InvalidRequest(f"{name} is not a coupon field.", param=name)
    kind = body.get("kind")
    if kind not in KINDS:
        raise errors.InvalidRequest("kind must be credit or percent.", param="kind")
    row: dict[str, Any] = {"code": code(body.get("code")), "kind": kind}
    row |= _value(body, kind)
    row |= _recipient(body)
    row |= changes(body, current=None)
    return row


def changes(body: dict[str, Any], *, current: dict[str, Any] | None) -> dict[str, Any]:
    """The changeable columns `body` sets, checked against each other and `current`
    (the coupon being changed; None when creating).

    Raises:
        InvalidRequest: a field is not valid, or cannot be changed (param named).
    """
    if current is not None:
        for name in sorted(set(body) - CHANGEABLE):
            raise errors.InvalidRequest(f"{name} cannot be changed.", param=name)
    row: dict[str, Any] = {}
    if "description" in body:
        text = body["description"]
        if not isinstance(text, str) or len(text) > DESCRIPTION_MAX or "\x00" in text:
            raise errors.InvalidRequest(
                f"description must be a string of at most {DESCRIPTION_MAX} characters.",
                param="description",
            )
        row["description"] = text.strip()
    if "max_redemptions" in body:
        row["max_redemptions"] = _count(body["max_redemptions"], "max_redemptions", none=True)
    if "max_per_user" in body:
        row["max_per_user"] = _count(body["max_per_user"], "max_per_user", none=False)
    for name, column in (("valid_from", "valid_from"), ("valid_until", "expires_at")):
        if name in body:
            row[column] = _moment(body[name], name)
    if "is_active" in body:
        if not isinstance(body["is_active"], bool):
            raise errors.InvalidRequest("is_active must be true or false.", param="is_active")
        row["is_active"] = body["is_active"]
    _consistent(row, current)
    return row


def _value(body: dict[str, Any], kind: str) -> dict[str, Any]:
    """`amount_nanos` of a credit coupon, or `percent_off` of a percent coupon."""
    if kind == "credit":
        if "percent_off" in body:
            raise errors.InvalidRequest("A credit coupon has no percent_off.", param="percent_off")
        if "amount" not in body:
            raise errors.InvalidRequest("A credit coupon needs an amount (USD).", param="amount")
        nanos = amounts.nanos(body["amount"], "amount", positive=True)
        ceiling = config.get_settings().coupon_max_credit_usd
        if nanos > money.usd_to_nanos(ceiling):
            raise errors.InvalidRequest(
                f"amount may be at most {ceiling} USD (COUPON_MAX_CREDIT_USD).", param="amount"
            )
        return {"amount_nanos": nanos}
    if "amount" in body:
        raise errors.InvalidRequest("A percent coupon has no amount.", param="amount")
    percent = body.get("percent_off")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise errors.InvalidRequest(
            "A percent coupon needs percent_off, a whole number from 1 to 100.",
            param="percent_off",
        )
    return {"percent_off": percent}


def _recipient(body: dict[str, Any]) -> dict[str, Any]:
    """The one user a coupon is for (`user_id` or `email`), or nobody in particular."""
    user_id, email = body.get("user_id"), body.get("email")
    if user_id is not None and email is not None:
        raise errors.InvalidRequest("Give user_id or email, not both.", param="email")
    if user_id is not None:
        try:
            found = str(uuid.UUID(user_id)) if isinstance(user_id, str) else None
        except ValueError:
            found = None
        row = found and db.execute("SELECT 1 FROM users WHERE id = %s", (found,)).fetchone()
        if not row:
            raise errors.InvalidRequest("No user has this user_id.", param="user_id")
        return {"user_id": found}
    if email is not None:
        if (
            not isinstance(email, str)
            or len(email) > EMAIL_MAX
            or "\x00" in email  # PostgreSQL text cannot hold NUL
            or not _EMAIL.match(email.strip())
        ):
            raise errors.InvalidRequest("email must be an e-mail address.", param="email")
        return {"email": email.strip().lower()}
    return {}


def _count(value: Any, param: str, *, none: bool) -> int | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= COUNT_MAX:
        also = " or null" if none else ""
        raise errors.InvalidRequest(f"{param} must be a whole number above 0{also}.", param=param)
    return value


def _moment(value: Any, param: str) -> datetime | None:
    """An ISO 8601 date-time (UTC when it names no zone), or None for "no limit"."""
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > 64:
            raise ValueError(value)
        found = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if found.tzinfo is None:
            found = found.replace(tzinfo=UTC)
        # In UTC it must stay within years 1 to 9999, as timestamptz is read back.
        found.astimezone(UTC)
    except (ValueError, OverflowError):
        raise errors.InvalidRequest(
            f"{param} must be an ISO 8601 date-time (2026-01-31T12:00:00Z) or null.", param=param
        ) from None
    return found


def _consistent(row: dict[str, Any], current: dict[str, Any] | None) -> None:
    """The validity window is not empty, and the maximum is not below what was redeemed."""
    old = current or {}
    start = row["valid_from"] if "valid_from" in row else _parsed(old.get("valid_from"))
    end = row["expires_at"] if "expires_at" in row else _parsed(old.get("valid_until"))
    if start is not None and end is not None and end <= start:
        raise errors.InvalidRequest("valid_until must be after valid_from.", param="valid_until")
    ceiling = row.get("max_redemptions")
    if ceiling is not None and ceiling < old.get("redemption_count", 0):
        raise errors.InvalidRequest(
            "max_redemptions cannot be below the redemptions made already.",
            param="max_redemptions",
        )


def _parsed(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def cursor_after(values: tuple[Any, ...]) -> list[Any]:
    """A coupons or redemptions cursor's (created_at, id), checked.

    Raises:
        InvalidRequest: a cursor this list did not give out (param `cursor`).
    """
    try:
        return [datetime.fromisoformat(str(values[0])), uuid.UUID(str(values[1]))]
    except ValueError:
        raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor") from None
