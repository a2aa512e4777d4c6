"""Who is managing an account: a user acting in one account, with their role there.

Management routes (keys, account, teams, provider keys, audit logs) accept an API key
that holds the route's scope; the key acts as its user, in its account, with that user's
role. (Sign-in with a Supabase session comes with `gatewayz.identity.sessions`.)
Resources are always read and written through `Principal.account_id`, never through an
id the client sent, so another account's ids find nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gatewayz import db, errors
from gatewayz.identity import access

if TYPE_CHECKING:
    from starlette.requests import Request

    from gatewayz.identity.auth import Caller

ROLES = ("owner", "admin", "member")
# Roles that may manage the account: its billing, its members and other members' keys.
MANAGERS = frozenset({"owner", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    """A user acting in an account: through an API key (`key`), or a session (`key` None)."""

    user_id: str
    account_id: str
    role: str
    key: Caller | None = None

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
    up fresh, so a key revoked a moment ago is refused here.

    Raises:
        InvalidApiKey / ExpiredApiKey / RevokedApiKey: 401.
        PermissionDenied (ScopeDenied, IpNotAllowed, ...): 403.
    """
    caller = access.authorize(request, scopes, fresh=True)
    return Principal(caller.user_id, caller.account_id, role_of(caller), key=caller)


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
