"""Sign-up with a Supabase session: on first use the user, a personal
account and a first key, in one transaction; the trial for a verified e-mail, once per
address ever.

Idempotent and safe when the same person's first requests race: the user row is inserted
with `ON CONFLICT DO NOTHING`, so one transaction wins and the others wait for it, then
find its user, account and key. A later call with a newly verified e-mail starts the
trial of an account that never had one (still on the free plan).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from gatewayz import config, db, errors
from gatewayz.email import outbox
from gatewayz.identity import accounts, audit, auth, keys
from gatewayz.identity.principal import Principal
from gatewayz.record import record

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.sessions import Session

TRIAL_PLAN = "trial"
FREE_PLAN = "free"
FIRST_KEY_NAME = "default"


@record
class SignUp:
    """The outcome: the profile, and the first key's secret when this call created it."""

    profile: dict[str, Any]
    key: keys.NewKey | None

    @property
    def created(self) -> bool:
        """Whether this call created the user and account."""
        return self.key is not None


def sign_up(
    session: Session, *, display_name: str | None = None, request: Request | None = None
) -> SignUp:
    """The session's user and personal account, created on first use.

    Raises:
        EmailInUse: another user here has the session's e-mail address.
        AccountInactive: the user's account is closed or suspended.
    """
    name = display_name or session.display_name
    late_trial = False
    with db.transaction() as cur:
        row = cur.execute(
            """INSERT INTO users (auth_user_id, email, display_name) VALUES (%s, %s, %s)
               ON CONFLICT DO NOTHING RETURNING id""",
            (session.auth_user_id, session.email, name),
        ).fetchone()
        if row is None:
            principal = _existing(cur, session)
            late_trial = _grant_trial(cur, principal, session, request)
            key = None
        else:
            principal, key = _provision(cur, str(row[0]), session, name, request)
        profile = accounts.profile(principal, cur=cur)
    if late_trial:
        auth.announce(principal.account_id)  # the plan changed: cached keys look again
    return SignUp(profile=profile, key=key)


def email_digest(email: str) -> bytes:
    """SHA-256 of the address as one inbox: lower case, without a `+tag`."""
    local, _, domain = email.strip().lower().rpartition("@")
    return hashlib.sha256(f"{local.split('+', 1)[0]}@{domain}".encode()).digest()


def _provision(
    cur: psycopg.Cursor[Any],
    user_id: str,
    session: Session,
    name: str | None,
    request: Request | None,
) -> tuple[Principal, keys.NewKey]:
    owner = accounts.open_personal(cur, user_id, name=name or session.email, plan_id=FREE_PLAN)
    principal = Principal(user_id, owner.account_id, "owner")
    key = keys.create(
        cur, account_id=owner.account_id, user_id=user_id, name=FIRST_KEY_NAME,
        pepper=config.key_hash_secret(),
    )  # fmt: skip
    audit.record(
        cur, action="account.create", target_type="account", target_id=owner.account_id,
        account_id=owner.account_id, principal=principal,
        after={"kind": "personal", "plan": FREE_PLAN, "email_verified": session.email_verified},
        request=request,
    )  # fmt: skip
    audit.record(
        cur, action="key.create", target_type="api_key", target_id=key.id,
        account_id=owner.account_id, principal=principal,
        after={"name": FIRST_KEY_NAME, "prefix": key.prefix, "last4": key.last4,
               "scopes": list(keys.DEFAULT_SCOPES)},
        request=request,
    )  # fmt: skip
    trial = _grant_trial(cur, principal, session, request)
    _queue_welcome(cur, principal, trial=trial)
    return principal, key


def _queue_welcome(cur: psycopg.Cursor[Any], principal: Principal, *, trial: bool) -> None:
    """The welcome e-mail, in the sign-up's transaction: once per user."""
    payload: dict[str, Any] = {}
    if trial:
        row = cur.execute(
            "SELECT balance_nanos FROM accounts WHERE id = %s", (principal.account_id,)
        ).fetchone()
        payload["trial_credit_nanos"] = int(row[0]) if row is not None else 0
    outbox.queue(
        cur, account_id=principal.account_id, template="welcome", subject="Welcome to Gatewayz",
        payload=payload, dedupe_key=f"welcome:{principal.user_id}",
    )  # fmt: skip


def _existing(cur: psycopg.Cursor[Any], session: Session) -> Principal:
    """The user already here with this session, in their personal account."""
    row = cur.execute(
        """SELECT u.id, m.account_id, a.status
             FROM users u
             JOIN memberships m ON m.user_id = u.id AND m.role = 'owner'
             JOIN accounts a ON a.id = m.account_id AND a.kind = 'personal'
            WHERE u.auth_user_id = %s
            ORDER BY a.created_at DESC LIMIT 1""",
        (session.auth_user_id,),
    ).fetchone()
    if row is None:
        # The insert gave way to a user with this e-mail but another Supabase id.
        raise errors.EmailInUse("Another user already signed up with this e-mail address.")
    if row[2] != "active":
        raise errors.AccountInactive(f"This account is {row[2]}.")
    return Principal(str(row[0]), str(row[1]), "owner")


def _grant_trial(
    cur: psycopg.Cursor[Any], principal: Principal, session: Session, request: Request | None
) -> bool:
    """Move a free account that never had a trial onto the trial plan and start it, if
    the e-mail is verified and no account ever had a trial with it."""
    if not session.email_verified:
        return False
    eligible = cur.execute(
        """SELECT 1 FROM accounts WHERE id = %s AND plan_id = %s AND trial_started_at IS NULL
              FOR UPDATE""",
        (principal.account_id, FREE_PLAN),
    ).fetchone()
    if eligible is None:
        return False
    claimed = cur.execute(
        """INSERT INTO trial_claims (email_digest, account_id) VALUES (%s, %s)
           ON CONFLICT DO NOTHING RETURNING 1""",
        (email_digest(session.email), principal.account_id),
    ).fetchone()
    if claimed is None:
        return False
    cur.execute(
        "UPDATE accounts SET plan_id = %s, updated_at = now() WHERE id = %s",
        (TRIAL_PLAN, principal.account_id),
    )
    accounts.start_trial(cur, principal.account_id)
    audit.record(
        cur, action="account.trial_start", target_type="account", target_id=principal.account_id,
        account_id=principal.account_id, principal=principal,
        before={"plan": FREE_PLAN}, after={"plan": TRIAL_PLAN}, request=request,
    )  # fmt: skip
    return True
