"""Who is managing an account: a user acting in one account, with their role there.

Management routes (keys, account, teams, provider keys, audit logs) accept an API key
that holds the route's scope; the key acts as its user, in its account, with that user's
role. Any other bearer is a Supabase session (`gatewayz.identity.sessions`): its user
acts in their personal account, or in the account named by `X-Gatewayz-Account` when
they are a member of it, with every scope of their role there.
Resources are always read and written through `Principal.account_id`, never through an
id the client sent, so another account's ids find nothing.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from gatewayz import db, errors, http
from gatewayz.identity import access, auth, keys, sessions
from gatewayz.record import record

if TYPE_CHECKING:
    from starlette.requests import Request

    from gatewayz.identity.auth import Caller

ROLES = ("owner", "admin", "member")
# Roles that may manage the account: its billing, its members and other members' keys.
MANAGERS = frozenset({"owner", "admin"})
ACCOUNT_HEADER = "x-gatewayz-account"
KEY_PREFIXES = ("gw_live_", "gw_test_")
_NOT_SIGNED_UP = "No Gatewayz account for this session yet: create it with POST /v1/account."

# The user's personal account (no header), or the account the header names.
_SESSION_LOOKUP = """
SELECT u.id, u.is_admin, m.account_id, m.role, a.status
  FROM users u
  LEFT JOIN (memberships m JOIN accounts a ON a.id = m.account_id)
    ON m.user_id = u.id
   AND CASE WHEN %(account)s::uuid IS NULL THEN a.kind = 'personal' AND m.role = 'owner'
            ELSE m.account_id = %(account)s::uuid END
 WHERE u.auth_user_id = %(sub)s
 ORDER BY a.created_at DESC
 LIMIT 1
"""


@record
class Principal:
    """A user acting in an account: through an API key (`key`), or a session (`key` None)."""

    user_id: str
    account_id: str
    role: str
    key: Caller | None = None
    scopes: frozenset[str] = frozenset()  # the key's, or a session's role's

    @property
    def manages(self) -> bool:
        """Whether this user is the account's owner or an admin."""
        return self.role in MANAGERS

    @property
    def actor_kind(self) -> str:
        """`audit_log.actor_kind`: `key` or `user`."""
        return "key" if self.key is not None else "user"


def from_request(request: Request, scopes: tuple[str, ...]) -> Principal:
    """The principal behind the request's bearer credential.

    A key must hold one of `scopes` and pass its IP and origin allowlists; it is looked
    up fresh, so a key revoked a moment ago is refused here. A session must belong to a
    signed-up user who is a member of the account it acts in.

    Raises:
        InvalidApiKey / ExpiredApiKey / RevokedApiKey: 401, the key cannot be used.
        InvalidSession / ExpiredSession: 401, the session token cannot be used.
        AccountNotFound: 404, the session's user has not signed up (or left).
        NotFound: 404, `X-Gatewayz-Account` names an account the user is not in.
        PermissionDenied (ScopeDenied, IpNotAllowed, AccountInactive, ...): 403.
    """
    found = session_of(request)
    if found is not None:
        return from_session(request, found, scopes)
    return from_key(request, scopes)


def from_key(request: Request, scopes: tuple[str, ...]) -> Principal:
    """The principal of the request's API key, for routes about the calling key itself
    (a session there is no key: `invalid_api_key`, like any bearer that is not one).

    Raises:
        what `from_request` raises for a key.
    """
    caller = access.authorize(request, scopes, fresh=True)
    return Principal(
        caller.user_id, caller.account_id, role_of(caller), key=caller, scopes=caller.scopes
    )


def session_of(request: Request) -> sessions.Session | None:
    """The verified session of the bearer, or None when the bearer is one of our keys.

    Raises:
        InvalidApiKey: no bearer at all.
        InvalidSession / ExpiredSession: a session token that cannot be used.
    """
    token = auth.bearer(http.request_headers(request.scope))
    if token.startswith(KEY_PREFIXES):
        return None
    return sessions.verify(token)


def from_session(request: Request, session: sessions.Session, scopes: tuple[str, ...]) -> Principal:
    """The session's user in the account they act in, with every scope of their role.

    Raises:
        what `from_request` raises for a session.
    """
    account = _account_header(request)
    row = db.execute(_SESSION_LOOKUP, {"sub": session.auth_user_id, "account": account}).fetchone()
    if row is None:
        raise errors.AccountNotFound(_NOT_SIGNED_UP)
    user_id, is_admin, account_id, role, status = row
    if account_id is None:
        if account is not None:
            raise errors.NotFound("No such account.", param="X-Gatewayz-Account")
        raise errors.AccountNotFound(_NOT_SIGNED_UP)
    if status != "active":
        raise errors.AccountInactive(f"This account is {status}.")
    granted = role_scopes(str(role), is_admin=bool(is_admin))
    if scopes and granted.isdisjoint(scopes):
        raise errors.ScopeDenied(f"Your role may not do this (needs one of {', '.join(scopes)}).")
    return Principal(str(user_id), str(account_id), str(role), scopes=granted)


def role_scopes(role: str, *, is_admin: bool = False) -> frozenset[str]:
    """What a session may do in an account: managers everything a key can hold, members
    all but `billing:write`; `admin` only for the platform's operators."""
    granted = set(keys.DEFAULT_SCOPES)
    if role not in MANAGERS:
        granted.discard("billing:write")
    if is_admin:
        granted.add("admin")
    return frozenset(granted)


def _account_header(request: Request) -> str | None:
    value = http.request_headers(request.scope).get(ACCOUNT_HEADER)
    if value is None:
        return None
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        raise errors.InvalidRequest(
            "X-Gatewayz-Account must be an account id.", param="X-Gatewayz-Account"
        ) from None


def role_of(caller: Caller) -> str:
    """The role of the key's user in the key's account.

    Raises:
        RevokedApiKey: the user is no longer a member (checked again here, at the source).
    """
    row = db.execute(
        "SELECT role FROM memberships WHERE account_id = %s AND user_id = %s",
        (caller.account_id, caller.user_id),
    ).fetchone()
    if row is None:
        raise errors.RevokedApiKey("This API key's user is no longer a member of its account.")
    return str(row[0])


def require_manager(principal: Principal) -> None:
    """Raises RoleDenied unless the principal is the account's owner or an admin."""
    if not principal.manages:
        raise errors.RoleDenied("Only the account's owner or an admin may do this.")
