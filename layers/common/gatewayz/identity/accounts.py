"""Accounts and their people: a personal account per user, owned by them;
what `/v1/account` shows of it, changes in it, and closing it.

Closing keeps the account's row and its ledger (money history is never deleted): its keys
are revoked, it stops serving, and the owner's personal data is anonymised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing import credits, money
from gatewayz.email import outbox
from gatewayz.identity import audit, auth
from gatewayz.identity.principal import require_manager
from gatewayz.record import record

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

# Read scopes: a key holding any of them may read its account (`GET /v1/account`).
READ_SCOPES = ("keys:read", "billing:read", "keys:write", "billing:write")
# Changes to the profile and the account: a key needs one of these.
WRITE_SCOPES = ("keys:write", "billing:write")
# Closing the account revokes every key, so it takes the key-managing scope.
CLOSE_SCOPES = ("keys:write",)
NAME_MAX = 200

_PROFILE = """
SELECT u.id, u.email, u.display_name, u.created_at, a.id, a.kind, a.name, a.plan_id,
       a.status, a.balance_nanos, a.trial_started_at, a.trial_ends_at, a.created_at,
       a.closed_at, a.email_preferences
  FROM users u, accounts a
 WHERE u.id = %s AND a.id = %s
"""


@record
class Owner:
    """A user and the personal account they own."""

    user_id: str
    account_id: str


def create_personal(
    cur: psycopg.Cursor[Any],
    *,
    email: str,
    display_name: str | None = None,
    plan_id: str = "trial",
    is_admin: bool = False,
    auth_user_id: str | None = None,
) -> Owner:
    """Create a user with a personal account on `plan_id`; a trial plan starts the trial.

    The caller owns the transaction. Raises psycopg.errors.UniqueViolation if the e-mail
    is taken.
    """
    user = cur.execute(
        """INSERT INTO users (email, display_name, is_admin, auth_user_id)
           VALUES (%s, %s, %s, %s) RETURNING id""",
        (email, display_name, is_admin, auth_user_id),
    ).fetchone()
    assert user is not None
    return open_personal(cur, str(user[0]), name=display_name or email, plan_id=plan_id)


def open_personal(cur: psycopg.Cursor[Any], user_id: str, *, name: str, plan_id: str) -> Owner:
    """Open the personal account of an existing user, owned by them, on `plan_id` (a
    trial plan starts the trial). The caller owns the transaction."""
    account = cur.execute(
        """INSERT INTO accounts (kind, name, plan_id) VALUES ('personal', %s, %s) RETURNING id""",
        (name[:200], plan_id),
    ).fetchone()
    assert account is not None
    owner = Owner(user_id=user_id, account_id=str(account[0]))
    cur.execute(
        "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'owner')",
        (owner.account_id, owner.user_id),
    )
    start_trial(cur, owner.account_id)
    return owner


def start_trial(cur: psycopg.Cursor[Any], account_id: str) -> bool:
    """Start the trial of an account on a trial plan: dates and the trial credit.

    Returns False when the account is not on a trial plan or already had its trial
    (the ledger reference `trial:<account>` is unique, so this can never pay twice).
    """
    row = cur.execute(
        """UPDATE accounts a
              SET trial_started_at = now(),
                  trial_ends_at = now() + make_interval(days => p.trial_days)
             FROM plans p
            WHERE a.id = %s AND p.id = a.plan_id AND p.kind = 'trial' AND a.trial_started_at IS NULL
        RETURNING p.included_credit_nanos""",
        (account_id,),
    ).fetchone()
    if row is None:
        return False
    if row[0] > 0:
        credits.post(
            cur,
            account_id=account_id,
            kind="trial",
            amount_nanos=int(row[0]),
            external_ref=f"trial:{account_id}",
            description="Trial credit",
        )
    return True


def profile(principal: Principal, *, cur: psycopg.Cursor[Any] | None = None) -> dict[str, Any]:
    """The user, their account (balance in USD) and their role there, as the API shows it."""
    query = (cur.execute if cur is not None else db.execute)(
        _PROFILE, (principal.user_id, principal.account_id)
    )
    row = query.fetchone()
    if row is None:
        raise errors.AccountNotFound("No such account.")
    (user_id, email, display_name, user_created, account_id, kind, name, plan_id, status,
     balance, trial_started, trial_ends, account_created, closed_at, preferences) = row  # fmt: skip
    return {
        "user": {
            "id": str(user_id),
            "email": email,
            "display_name": display_name,
            "created_at": user_created,
        },
        "account": {
            "id": str(account_id),
            "kind": kind,
            "name": name,
            "plan": plan_id,
            "status": status,
            # A JSON number: exact to the nano-dollar below $10 million (float's 16 digits).
            "balance": float(money.nanos_to_usd(int(balance))),
            "trial_started_at": trial_started,
            "trial_ends_at": trial_ends,
            "created_at": account_created,
            "closed_at": closed_at,
            # Every notice the account may turn off, and whether it gets it.
            "email_preferences": {
                name: preferences.get(name) is not False for name in sorted(outbox.OPTIONAL)
            },
        },
        "role": principal.role,
    }


def update(
    principal: Principal, changes: dict[str, Any], *, request: Request | None = None
) -> dict[str, Any]:
    """Change the user's `display_name` (None clears it) and, for the account's owner or
    an admin, the account's `name` and `email_preferences` (optional notices on or off);
    one audit row per object changed. The new profile.

    Raises:
        InvalidRequest: nothing to change, a blank or too long value, an unknown or
            essential notice, or a preference that is not true/false (param named).
        RoleDenied: `name` or `email_preferences` by a member.
    """
    if not changes:
        raise errors.InvalidRequest(
            "Nothing to change: send display_name, name or email_preferences."
        )
    display_name = _text(changes, "display_name", nullable=True)
    name = _text(changes, "name", nullable=False)
    preferences = _preferences(changes)
    if "name" in changes or preferences is not None:
        require_manager(principal)
    with db.transaction() as cur:
        if "display_name" in changes:
            _change(cur, principal, "users", principal.user_id, "display_name", display_name,
                    action="user.update", target_type="user", request=request)  # fmt: skip
        if "name" in changes:
            _change(cur, principal, "accounts", principal.account_id, "name", name,
                    action="account.update", target_type="account", request=request)  # fmt: skip
        if preferences is not None:
            _change_preferences(cur, principal, preferences, request=request)
        return profile(principal, cur=cur)


def close(principal: Principal, *, request: Request | None = None) -> dict[str, Any]:
    """Close the principal's account: revoke every key, mark it closed, keep the ledger,
    and, for a personal account, anonymise its owner (e-mail replaced, Supabase id
    cleared), so that signing in again starts afresh. Warm functions refuse the keys on
    their next request. The closed account.

    Raises:
        RoleDenied: the principal is not the account's owner.
    """
    if principal.role != "owner":
        raise errors.RoleDenied("Only the account's owner may close it.")
    with db.transaction() as cur:
        found = cur.execute(
            "SELECT status, kind FROM accounts WHERE id = %s FOR UPDATE", (principal.account_id,)
        ).fetchone()
        if found is None:
            raise errors.AccountNotFound("No such account.")
        revoked = cur.execute(
            """UPDATE api_keys SET revoked_at = now(), updated_at = now()
                WHERE account_id = %s AND revoked_at IS NULL RETURNING id""",
            (principal.account_id,),
        ).fetchall()
        cur.execute(
            """UPDATE accounts SET status = 'closed', closed_at = now(), updated_at = now()
                WHERE id = %s""",
            (principal.account_id,),
        )
        if found[1] == "personal":
            _anonymise(cur, principal.user_id)
        audit.record(
            cur, action="account.close", target_type="account", target_id=principal.account_id,
            account_id=principal.account_id, principal=principal, before={"status": found[0]},
            after={"status": "closed", "revoked_keys": [str(key_id) for (key_id,) in revoked]},
            request=request,
        )  # fmt: skip
        closed = profile(principal, cur=cur)
        version = cur.execute(
            "SELECT auth_version FROM accounts WHERE id = %s", (principal.account_id,)
        ).fetchone()
    assert version is not None
    auth.announce(principal.account_id, int(version[0]))
    return closed


def _anonymise(cur: psycopg.Cursor[Any], user_id: str) -> None:
    cur.execute(
        """UPDATE users SET email = 'deleted-' || id || '@deleted.invalid', display_name = NULL,
                            auth_user_id = NULL, deleted_at = now(), updated_at = now()
            WHERE id = %s""",
        (user_id,),
    )


def _text(changes: dict[str, Any], field: str, *, nullable: bool) -> str | None:
    """The stripped new value of `field`, checked; None when absent or cleared."""
    if field not in changes:
        return None
    value = changes[field]
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > NAME_MAX:
        raise errors.InvalidRequest(
            f"{field} must be a non-blank string of at most {NAME_MAX} characters.", param=field
        )
    return value.strip()


def _preferences(changes: dict[str, Any]) -> dict[str, bool] | None:
    """The `email_preferences` asked for, checked; None when absent.

    Raises:
        InvalidRequest: not an object of optional notice names to true/false.
    """
    if "email_preferences" not in changes:
        return None
    value = changes["email_preferences"]
    if not isinstance(value, dict) or not value:
        raise errors.InvalidRequest(
            'email_preferences must be an object such as {"low_balance": false}; notices: '
            + ", ".join(sorted(outbox.OPTIONAL))
            + ".",
            param="email_preferences",
        )
    for notice, wanted in value.items():
        param = f"email_preferences.{notice}"
        if notice in outbox.ESSENTIAL:
            raise errors.InvalidRequest(
                f"{notice} is an essential notice and cannot be turned off.", param=param
            )
        if notice not in outbox.OPTIONAL:
            raise errors.InvalidRequest(
                f"Unknown notice {notice!r}; notices you can turn off: "
                + ", ".join(sorted(outbox.OPTIONAL))
                + ".",
                param=param,
            )
        if not isinstance(wanted, bool):
            raise errors.InvalidRequest(f"{param} must be true or false.", param=param)
    return dict(value)


def _change_preferences(
    cur: psycopg.Cursor[Any],
    principal: Principal,
    preferences: dict[str, bool],
    *,
    request: Request | None,
) -> None:
    """Merge `preferences` into the account's, with an audit row."""
    from psycopg.types.json import Jsonb

    before = cur.execute(
        "SELECT email_preferences FROM accounts WHERE id = %s FOR UPDATE",
        (principal.account_id,),
    ).fetchone()
    assert before is not None
    after = {**before[0], **preferences}
    cur.execute(
        "UPDATE accounts SET email_preferences = %s, updated_at = now() WHERE id = %s",
        (Jsonb(after), principal.account_id),
    )
    audit.record(
        cur, action="account.update", target_type="account", target_id=principal.account_id,
        account_id=principal.account_id, principal=principal,
        before={"email_preferences": before[0]}, after={"email_preferences": after},
        request=request,
    )  # fmt: skip


def _change(
    cur: psycopg.Cursor[Any],
    principal: Principal,
    table: str,
    row_id: str,
    column: str,
    value: str | None,
    *,
    action: str,
    target_type: str,
    request: Request | None,
) -> None:
    """Set one text column of one row, with its audit row (before and after)."""
    from psycopg import sql

    before = cur.execute(
        sql.SQL("SELECT {} FROM {} WHERE id = %s FOR UPDATE").format(
            sql.Identifier(column), sql.Identifier(table)
        ),
        (row_id,),
    ).fetchone()
    assert before is not None
    cur.execute(
        sql.SQL("UPDATE {} SET {} = %s, updated_at = now() WHERE id = %s").format(
            sql.Identifier(table), sql.Identifier(column)
        ),
        (value, row_id),
    )
    audit.record(
        cur, action=action, target_type=target_type, target_id=row_id,
        account_id=principal.account_id, principal=principal,
        before={column: before[0]}, after={column: value}, request=request,
    )  # fmt: skip
