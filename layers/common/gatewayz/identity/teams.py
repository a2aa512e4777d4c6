"""Teams: accounts of kind `team` whose one balance their members spend through their own
keys. Creating, listing, reading and renaming them.

A team is reached through the caller's user, whatever account their key or session acts
in: the user's membership of the team gives their role there. A team the user is not a
member of does not exist for them (404), whatever its id.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from gatewayz import db, errors, pagination
from gatewayz.billing import money
from gatewayz.identity import audit
from gatewayz.identity.principal import Principal, require_manager

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg
    from starlette.requests import Request

READ_SCOPES = ("keys:read", "keys:write")
WRITE_SCOPES = ("keys:write",)
# New teams start on the free plan with no trial credit: the trial is a person's, once.
TEAM_PLAN = "free"
NAME_MAX = 200

_TEAM = """
SELECT a.id, a.name, a.plan_id, a.status, a.balance_nanos, a.created_at, m.role,
       (SELECT count(*) FROM memberships c WHERE c.account_id = a.id) AS members
  FROM accounts a JOIN memberships m ON m.account_id = a.id AND m.user_id = %s
 WHERE a.kind = 'team'
"""


def create(actor: Principal, name: str | None, *, request: Request | None = None) -> dict[str, Any]:
    """`POST /v1/teams`: a new team account owned by the actor's user.

    Raises:
        InvalidRequest: `name` missing, blank or too long.
    """
    name = _name(name)
    with db.transaction() as cur:
        row = cur.execute(
            "INSERT INTO accounts (kind, name, plan_id) VALUES ('team', %s, %s) RETURNING id",
            (name, TEAM_PLAN),
        ).fetchone()
        assert row is not None
        team_id = str(row[0])
        cur.execute(
            "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'owner')",
            (team_id, actor.user_id),
        )
        owner = as_member(actor, team_id, "owner")
        audit.record(
            cur, action="team.create", target_type="account", target_id=team_id,
            account_id=team_id, principal=owner, after={"name": name, "plan": TEAM_PLAN},
            request=request,
        )  # fmt: skip
        return {"data": get_in(cur, actor.user_id, team_id)}


def list_teams(actor: Principal, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """`GET /v1/teams`: the teams the actor's user is in, newest first, with their role."""
    with db.transaction() as cur:
        return page_of(cur, _TEAM, [actor.user_id], limit, cursor, by=("a.created_at", "a.id"),
                       newest_first=True, shape=_shape)  # fmt: skip


def get(actor: Principal, team_id: str) -> dict[str, Any]:
    """`GET /v1/teams/{id}`. Raises NotFound unless the actor's user is a member."""
    with db.transaction() as cur:
        in_team(cur, actor, team_id)
        return {"data": get_in(cur, actor.user_id, team_id)}


def update(
    actor: Principal, team_id: str, name: str | None, *, request: Request | None = None
) -> dict[str, Any]:
    """`PATCH /v1/teams/{id}`: rename the team.

    Raises:
        InvalidRequest: `name` missing, blank or too long.
        NotFound: not a member. RoleDenied: a member, not the owner or an admin.
    """
    name = _name(name)
    with db.transaction() as cur:
        member = in_team(cur, actor, team_id, lock=True)
        require_manager(member)
        before = cur.execute("SELECT name FROM accounts WHERE id = %s", (team_id,)).fetchone()
        assert before is not None
        if before[0] != name:
            cur.execute(
                "UPDATE accounts SET name = %s, updated_at = now() WHERE id = %s", (name, team_id)
            )
            audit.record(
                cur, action="team.update", target_type="account", target_id=team_id,
                account_id=team_id, principal=member, before={"name": before[0]},
                after={"name": name}, request=request,
            )  # fmt: skip
        return {"data": get_in(cur, actor.user_id, team_id)}


def page_of(
    cur: psycopg.Cursor[Any],
    query: str,
    params: list[Any],
    limit: str | None,
    cursor: str | None,
    *,
    by: tuple[str, str],
    newest_first: bool,
    shape: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of `query` (ending in a WHERE clause) ordered by `by`: a timestamp column
    and a uuid column, both among the selected columns (their positions give the cursor).

    Raises:
        InvalidRequest: a bad `limit` or `cursor`.
    """
    page = pagination.parse(limit, cursor, width=2)
    direction, after = ("DESC", "<") if newest_first else ("ASC", ">")
    if page.after is not None:
        query += f" AND ({by[0]}, {by[1]}) {after} (%s::timestamptz, %s::uuid)"
        params = [*params, *page.after]
    query += f" ORDER BY {by[0]} {direction}, {by[1]} {direction} LIMIT %s"
    found = cur.execute(query, (*params, page.limit + 1))
    names = [column.name for column in found.description or ()]
    at, ident = names.index(by[0].split(".")[1]), names.index(by[1].split(".")[1])
    return pagination.respond(
        found.fetchall(), page, key=lambda row: (row[at].isoformat(), str(row[ident])),
        shape=shape,
    )  # fmt: skip


def in_team(
    cur: psycopg.Cursor[Any], actor: Principal, team_id: str, *, lock: bool = False
) -> Principal:
    """The actor's user acting in the team, with their role there; `lock` holds the team's
    row until the transaction ends, so membership changes of one team happen one at a time.

    Raises:
        NotFound: no such team, or the actor's user is not a member of it.
    """
    found = cur.execute(
        """SELECT m.role FROM accounts a JOIN memberships m ON m.account_id = a.id
            WHERE a.id = %s AND a.kind = 'team' AND m.user_id = %s"""
        + (" FOR UPDATE OF a" if lock else ""),
        (parse_id(team_id, "team"), actor.user_id),
    ).fetchone()
    if found is None:
        raise errors.NotFound("No such team.")
    return as_member(actor, team_id, str(found[0]))


def as_member(actor: Principal, team_id: str, role: str) -> Principal:
    """The actor's user (and key, if any) acting in the team with `role`."""
    return Principal(actor.user_id, team_id, role, key=actor.key, scopes=actor.scopes)


def parse_id(value: str, what: str) -> str:
    """`value` as a canonical UUID. Raises NotFound (`No such <what>.`) for anything else:
    a malformed id names nothing, like an id of another account."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise errors.NotFound(f"No such {what}.") from None


def _name(value: str | None) -> str:
    if value is None or not value.strip() or len(value.strip()) > NAME_MAX:
        raise errors.InvalidRequest(
            f"name must be a non-blank string of at most {NAME_MAX} characters.", param="name"
        )
    return value.strip()


def get_in(cur: psycopg.Cursor[Any], user_id: str, team_id: str) -> dict[str, Any]:
    """The team as its member `user_id` sees it. Raises NotFound for a non-member."""
    row = cur.execute(_TEAM + " AND a.id = %s", (user_id, team_id)).fetchone()
    if row is None:
        raise errors.NotFound("No such team.")
    return _shape(row)


def _shape(row: Any) -> dict[str, Any]:
    team_id, name, plan_id, status, balance, created_at, role, members = row
    return {
        "id": str(team_id),
        "name": name,
        "plan": plan_id,
        "status": status,
        "balance": float(money.nanos_to_usd(int(balance))),
        "role": role,
        "members": int(members),
        "created_at": created_at.isoformat(),
    }
