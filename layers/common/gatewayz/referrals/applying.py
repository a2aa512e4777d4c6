"""Applying a referral code (`POST /v1/referrals/apply`, docs/api.md, referrals).

A new user applies one code, once, within `REFERRAL_APPLY_DAYS` of sign-up and before
their personal account's first paid purchase. The referral binds the two users and their
personal accounts (where the rewards go); it stays `pending` until that purchase is paid
(`gatewayz.referrals.rewards`). A user's own code, or the code of someone who shares an
account with them (a teammate), is refused here; the same card or Stripe customer can
only be seen at the purchase, which voids the referral then.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gatewayz import config, db, errors
from gatewayz.identity import audit
from gatewayz.referrals import codes

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

SCOPES = ("referrals",)

# The personal account a user owns (the newest, as sign-up finds it).
_PERSONAL = """
SELECT a.id, a.status FROM memberships m JOIN accounts a ON a.id = m.account_id
 WHERE m.user_id = %s AND m.role = 'owner' AND a.kind = 'personal'
 ORDER BY a.created_at DESC LIMIT 1
"""


def apply(principal: Principal, body: Any, *, request: Request | None = None) -> dict[str, Any]:
    """Apply the referral code in `body` (`{"code": ...}`) for the principal's user.

    Raises:
        InvalidRequest: the body is not an object with `code` (param named).
        InvalidReferralCode: no such code, or the caller's own or a teammate's.
        ReferralWindowClosed: signed up too long ago, or already bought credit.
        ReferralAlreadyApplied: the user or their account already applied a code.
    """
    if not isinstance(body, dict) or "code" not in body:
        raise errors.InvalidRequest("Send a JSON object with the referral `code`.", param="code")
    unknown = sorted(set(body) - {"code"})
    if unknown:
        raise errors.InvalidRequest(f"Unknown field {unknown[0]!r}.", param=unknown[0])
    code = codes.normalize(body["code"])
    with db.transaction() as cur:
        referred = _referred_account(cur, principal.user_id)
        referrer = _referrer(cur, code, principal.user_id)
        _check_window(cur, principal.user_id, referred)
        row = cur.execute(
            """INSERT INTO referrals (referrer_account_id, referred_account_id, code,
                                      referrer_user_id, referred_user_id)
               VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
            RETURNING id, status, created_at""",
            (referrer[1], referred, code, referrer[0], principal.user_id),
        ).fetchone()
        if row is None:
            raise errors.ReferralAlreadyApplied("You have already applied a referral code.")
        audit.record(
            cur, action="referral.apply", target_type="referral", target_id=str(row[0]),
            account_id=referred, principal=principal, after={"code": code}, request=request,
        )  # fmt: skip
    return {
        "id": str(row[0]),
        "object": "referral",
        "code": code,
        "status": row[1],
        "created_at": row[2].isoformat(),
    }


def _referred_account(cur: psycopg.Cursor[Any], user_id: str) -> str:
    """The caller's personal account, locked (two applies of one user queue here)."""
    row = cur.execute(_PERSONAL + " FOR UPDATE OF a", (user_id,)).fetchone()
    if row is None or row[1] != "active":
        raise errors.PermissionDenied("Referral codes apply to an active personal account.")
    return str(row[0])


def _referrer(cur: psycopg.Cursor[Any], code: str, user_id: str) -> tuple[str, str]:
    """(user id, personal account id) of the code's owner, who must be someone else,
    sharing no account with the caller and not referred by them."""
    row = cur.execute(
        "SELECT id FROM users WHERE referral_code = %s AND deleted_at IS NULL", (code,)
    ).fetchone()
    account = cur.execute(_PERSONAL, (row[0],)).fetchone() if row is not None else None
    if row is None or account is None or account[1] != "active":
        raise errors.InvalidReferralCode("No user has this referral code.", param="code")
    referrer = str(row[0])
    related = cur.execute(
        """SELECT EXISTS (SELECT 1 FROM memberships a JOIN memberships b USING (account_id)
                           WHERE a.user_id = %(referrer)s AND b.user_id = %(user)s)
               OR EXISTS (SELECT 1 FROM referrals WHERE referrer_user_id = %(user)s
                                                    AND referred_user_id = %(referrer)s)""",
        {"referrer": referrer, "user": user_id},
    ).fetchone()
    if referrer == user_id or (related is not None and related[0]):
        raise errors.InvalidReferralCode(
            "You cannot apply your own referral code, a teammate's, or one of a user you referred.",
            param="code",
        )
    return referrer, str(account[0])


def _check_window(cur: psycopg.Cursor[Any], user_id: str, account_id: str) -> None:
    days = config.get_settings().referral_apply_days
    row = cur.execute(
        """SELECT u.created_at,
                  EXISTS (SELECT 1 FROM payments p WHERE p.account_id = %s
                                                     AND p.paid_at IS NOT NULL)
             FROM users u WHERE u.id = %s""",
        (account_id, user_id),
    ).fetchone()
    assert row is not None
    if row[0] < datetime.now(UTC) - timedelta(days=days):
        raise errors.ReferralWindowClosed(
            f"Referral codes apply within {days} days of sign-up.", param="code"
        )
    if row[1]:
        raise errors.ReferralWindowClosed(
            "Referral codes apply before the account's first purchase.", param="code"
        )
