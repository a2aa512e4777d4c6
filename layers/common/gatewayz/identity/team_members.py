"""A team's members: who they are, what each has spent of the shared balance, their roles
and their removal.

Owners and admins manage members; only the owner makes or unmakes an admin, and hands
ownership over (`role: "owner"`, which makes the old owner an admin). The owner is never
removed or demoted otherwise. Removing a member revokes their keys in the team, and the
team's new auth version is announced, so those keys are refused on their next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import db, errors
from gatewayz.billing import money
from gatewayz.identity import audit, auth, teams
from gatewayz.identity.principal import ROLES, require_manager

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

# Each member with what their keys in the team have spent (usage rows of the team).
_MEMBERS = """
SELECT m.user_id, u.email, u.display_name, m.role, m.created_at,
       COALESCE((SELECT sum(r.cost_nanos) FROM usage_records r
                   JOIN api_keys k ON k.id = r.api_key_id
                  WHERE r.account_id = m.account_id AND k.user_id = m.user_id), 0)
  FROM memberships m JOIN users u ON u.id = m.user_id
 WHERE m.account_id = %s
"""


def list_members(
    actor: Principal, team_id: str, limit: str | None, cursor: str | None
) -> dict[str, Any]:
    """`GET /v1/teams/{id}/members`: oldest member first. Raises NotFound for a non-member."""
    with db.transaction() as cur:
        teams.in_team(cur, actor, team_id)
        return teams.page_of(cur, _MEMBERS, [team_id], limit, cursor,
                             by=("m.created_at", "m.user_id"), newest_first=False,
                             shape=_shape)  # fmt: skip


def set_role(
    actor: Principal,
    team_id: str,
    user_id: str,
    role: str | None,
    *,
    request: Request | None = None,
) -> dict[str, Any]:
    """`PATCH /v1/teams/{id}/members/{user_id}`: the member with their new role.

    Raises:
        InvalidRequest: `role` is not owner, admin or member.
        NotFound: the actor or the target is not a member of the team.
        RoleDenied: the rules of the module docstring.
    """
    if role not in ROLES:
        raise errors.InvalidRequest("role must be owner, admin or member.", param="role")
    with db.transaction() as cur:
        me = teams.in_team(cur, actor, team_id, lock=True)
        require_manager(me)
        target = _target(cur, team_id, user_id)
        current = str(target[3])
        if role == current:
            return {"data": _shape(target)}
        if role == "owner" or current == "owner":
            if me.role != "owner" or role != "owner":
                raise errors.RoleDenied(
                    "Only the owner hands over ownership; the owner keeps it otherwise."
                )
            _change(cur, me, me.user_id, "owner", "admin", request)
        elif "admin" in (role, current) and me.role != "owner":
            raise errors.RoleDenied("Only the team's owner makes or unmakes an admin.")
        _change(cur, me, str(target[0]), current, role, request)
        changed = _target(cur, team_id, user_id)
    auth.announce(team_id)
    return {"data": _shape(changed)}


def remove(
    actor: Principal, team_id: str, user_id: str, *, request: Request | None = None
) -> dict[str, Any]:
    """`DELETE /v1/teams/{id}/members/{user_id}`: remove a member and revoke their keys in
    the team (a member may remove themself).

    Raises:
        NotFound: the actor or the target is not a member.
        RoleDenied: a member removing someone else, an admin removing an admin, or anyone
            removing the owner.
    """
    with db.transaction() as cur:
        me = teams.in_team(cur, actor, team_id, lock=True)
        target = _target(cur, team_id, user_id)
        target_id, role = str(target[0]), str(target[3])
        if role == "owner":
            raise errors.RoleDenied("The owner cannot leave or be removed: hand over ownership.")
        if target_id != me.user_id:
            require_manager(me)
            if role == "admin" and me.role != "owner":
                raise errors.RoleDenied("Only the team's owner removes an admin.")
        revoked = cur.execute(
            """UPDATE api_keys SET revoked_at = now(), updated_at = now()
                WHERE account_id = %s AND user_id = %s AND revoked_at IS NULL RETURNING id""",
            (team_id, target_id),
        ).fetchall()
        cur.execute(
            "DELETE FROM memberships WHERE account_id = %s AND user_id = %s", (team_id, target_id)
        )
        audit.record(
            cur, action="member.remove", target_type="user", target_id=target_id,
            account_id=team_id, principal=me, before={"role": role},
            after={"revoked_keys": [str(key_id) for (key_id,) in revoked]}, request=request,
        )  # fmt: skip
    auth.announce(team_id)
    return {"data": {**_shape(target), "removed": True, "revoked_keys": len(revoked)}}


def _target(cur: psycopg.Cursor[Any], team_id: str, user_id: str) -> Any:
    row = cur.execute(
        _MEMBERS + " AND m.user_id = %s", (team_id, teams.parse_id(user_id, "member"))
    ).fetchone()
    if row is None:
        raise errors.NotFound("No such member.")
    return row


def _change(
    cur: psycopg.Cursor[Any],
    me: Principal,
    user_id: str,
    before: str,
    after: str,
    request: Request | None,
) -> None:
    cur.execute(
        "UPDATE memberships SET role = %s WHERE account_id = %s AND user_id = %s",
        (after, me.account_id, user_id),
    )
    audit.record(
        cur, action="member.role", target_type="user", target_id=user_id,
        account_id=me.account_id, principal=me, before={"role": before}, after={"role": after},
        request=request,
    )  # fmt: skip


def _shape(row: Any) -> dict[str, Any]:
    user_id, email, display_name, role, joined_at, spent = row
    return {
        "user_id": str(user_id),
        "email": email,
        "display_name": display_name,
        "role": role,
        "joined_at": joined_at.isoformat(),
        "usage": float(money.nanos_to_usd(int(spent))),
    }
