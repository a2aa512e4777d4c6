"""What a user sees of their referrals (`GET /v1/referrals`, docs/api.md, referrals): their
code and share link, counts and rewards, and the users they referred, newest first,
cursor-paginated, with each address masked.

Everything is read through the caller's own user id: another user's referrals are never
in the answer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gatewayz import config, db, errors, pagination
from gatewayz.billing.amounts import usd
from gatewayz.referrals import codes

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gatewayz.identity.principal import Principal

_STATS = """
SELECT u.referral_code,
       (SELECT count(*) FROM referrals r WHERE r.referrer_user_id = u.id),
       (SELECT count(*) FROM referrals r WHERE r.referrer_user_id = u.id
                                           AND r.status = 'rewarded'),
       (SELECT COALESCE(sum(r.reward_nanos), 0) FROM referrals r
         WHERE r.referrer_user_id = u.id AND r.status = 'rewarded')
  FROM users u WHERE u.id = %s
"""
_MINE = """
SELECT r.code, r.status, r.referred_reward_nanos, r.created_at, r.rewarded_at
  FROM referrals r WHERE r.referred_user_id = %s
"""
_LIST = """
SELECT r.id, u.email, r.status, r.void_reason, r.reward_nanos, r.created_at, r.rewarded_at
  FROM referrals r JOIN users u ON u.id = r.referred_user_id
 WHERE r.referrer_user_id = %s {after}
 ORDER BY r.created_at DESC, r.id DESC
 LIMIT %s
"""


def overview(principal: Principal, query: Mapping[str, str]) -> dict[str, Any]:
    """The caller's code, link, counts, the code they applied, and a page of the users
    they referred (`limit`, `cursor`).

    Raises:
        InvalidRequest: a bad `limit` or `cursor` (param named).
    """
    page = pagination.parse(query.get("limit"), query.get("cursor"), width=2)
    user = principal.user_id
    stats = db.execute(_STATS, (user,)).fetchone()
    assert stats is not None
    code, sign_ups, conversions, earned = stats
    params: list[Any] = [user]
    after = ""
    if page.after is not None:
        after = "AND (r.created_at, r.id) < (%s, %s)"
        params.extend(_cursor(page.after))
    rows = db.execute(_LIST.format(after=after), (*params, page.limit + 1)).fetchall()
    listed = pagination.respond(
        rows, page, key=lambda row: (row[5].isoformat(), str(row[0])), shape=_shape
    )
    return {
        "object": "referrals",
        "code": code,
        "share_link": share_link(code),
        "sign_ups": int(sign_ups),
        "conversions": int(conversions),
        "rewards_earned": usd(int(earned)),
        "referred_by": _referred_by(user),
        **listed,
    }


def _cursor(values: tuple[Any, ...]) -> tuple[datetime, uuid.UUID]:
    try:
        return datetime.fromisoformat(values[0]), uuid.UUID(values[1])
    except (TypeError, ValueError):
        raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor") from None


def share_link(code: str) -> str | None:
    """`PUBLIC_URL/?ref=CODE` when `PUBLIC_URL` is set (a link to the app to share)."""
    settings = config.get_settings()
    if "public_url" not in settings.model_fields_set:
        return None
    return f"{settings.public_url.rstrip('/')}/?ref={quote(code)}"


def _referred_by(user_id: str) -> dict[str, Any] | None:
    row = db.execute(_MINE, (user_id,)).fetchone()
    if row is None:
        return None
    code, status, reward, created_at, rewarded_at = row
    return {
        "code": code,
        "status": status,
        "reward": usd(int(reward)),
        "applied_at": created_at.isoformat(),
        "rewarded_at": None if rewarded_at is None else rewarded_at.isoformat(),
    }


def _shape(row: tuple[Any, ...]) -> dict[str, Any]:
    referral_id, email, status, reason, reward, created_at, rewarded_at = row
    return {
        "id": str(referral_id),
        "object": "referral",
        "email": codes.mask_email(email),
        "status": status,
        "void_reason": reason,
        "reward": usd(int(reward)),
        "created_at": created_at.isoformat(),
        "rewarded_at": None if rewarded_at is None else rewarded_at.isoformat(),
    }
