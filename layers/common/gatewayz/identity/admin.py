"""User administration by the platform's operators (`/admin/users`, `gatewayz admin`):
create a user with a personal account and a first key, find and read users, make or
unmake operators, suspend and reactivate a user's personal account.

An operator is a user with `users.is_admin` acting with the `admin` scope (an admin key,
or a session of theirs). The CLI acts as `system` (`actor` None). Each change writes its
audit row, in the changed account, in the same transaction; a suspension is announced
once committed, so the account's keys are refused on their next request everywhere.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

from gatewayz import config, db, errors, jsonbody, pagination
from gatewayz.billing import money
from gatewayz.identity import accounts, audit, auth, keys, principal, signup

if TYPE_CHECKING:
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

SCOPES = ("admin",)
EMAIL_MAX = 320
QUERY_MAX = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FIELDS = ("is_admin", "suspended")

# A user with their personal account (the newest, if they ever had several).
_USER = """
SELECT u.id, u.email, u.display_name, u.is_admin, u.created_at, u.deleted_at,
       a.id, a.plan_id, a.status, a.balance_nanos, a.created_at
  FROM users u
  LEFT JOIN LATERAL (
       SELECT a.* FROM memberships m JOIN accounts a ON a.id = m.account_id
        WHERE m.user_id = u.id AND m.role = 'owner' AND a.kind = 'personal'
        ORDER BY a.created_at DESC LIMIT 1) a ON TRUE
"""


def operator(request: Request) -> Principal:
    """The operator making the request.

    Raises:
        PermissionDenied: 403, the caller is not a platform operator (or their key lacks
            the `admin` scope). And what `principal.from_request` raises.
    """
    actor = principal.from_request(request, SCOPES)
    row = db.execute("SELECT is_admin FROM users WHERE id = %s", (actor.user_id,)).fetchone()
    if "admin" not in actor.scopes or row is None or not row[0]:
        raise errors.PermissionDenied("Only the platform's operators may do this.")
    return actor


def object_body(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object.

    Raises:
        InvalidJSON / InvalidRequest: not JSON, or not an object.
    """
    value = jsonbody.loads(raw) if raw.strip() else None
    if not isinstance(value, dict):
        raise errors.InvalidRequest("Request body must be a JSON object.")
    return value


def create_user(
    email: Any, *, actor: Principal | None, request: Request | None = None
) -> tuple[dict[str, Any], keys.NewKey]:
    """A new user with a personal account on the free plan and a first key: `{"user",
    "account"}` and the key (its secret shown only now).

    Raises:
        InvalidRequest: not an e-mail address (param `email`).
        EmailInUse: 409, a user here has this address already.
    """
    if not isinstance(email, str) or len(email) > EMAIL_MAX or not _EMAIL.match(email.strip()):
        raise errors.InvalidRequest("email must be an e-mail address.", param="email")
    try:
        with db.transaction() as cur:
            owner = accounts.create_personal(cur, email=email.strip(), plan_id=signup.FREE_PLAN)
            key = keys.create(
                cur, account_id=owner.account_id, user_id=owner.user_id,
                name=signup.FIRST_KEY_NAME, pepper=config.key_hash_secret(),
            )  # fmt: skip
            _audit(cur, actor, request, owner.account_id, "user.create", "user", owner.user_id,
                   None, {"email": email.strip(), "account_id": owner.account_id,
                          "plan": signup.FREE_PLAN, "key_id": key.id})  # fmt: skip
            view = _view(cur, owner.user_id)
    except psycopg.errors.UniqueViolation:
        raise errors.EmailInUse("A user with this e-mail address exists already.") from None
    account = view.pop("account")
    return {"user": view, "account": account}, key


def list_users(q: str | None, limit: str | None, cursor: str | None) -> dict[str, Any]:
    """Users newest first, those whose e-mail contains `q` (any case) when given.

    Raises:
        InvalidRequest: `q`, `limit` or `cursor` is not valid (param named).
    """
    page = pagination.parse(limit, cursor, width=2)
    where, params = ["TRUE"], []
    if q is not None:
        if not q.strip() or len(q) > QUERY_MAX:
            raise errors.InvalidRequest(
                f"q must be a non-blank string of at most {QUERY_MAX} characters.", param="q"
            )
        escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("u.email ILIKE %s")
        params.append(f"%{escaped}%")
    if page.after is not None:
        where.append("(u.created_at, u.id) < (%s, %s)")
        params += _after(page.after)
    rows = db.execute(
        f"{_USER} WHERE {' AND '.join(where)} ORDER BY u.created_at DESC, u.id DESC LIMIT %s",
        (*params, page.limit + 1),
    ).fetchall()
    return pagination.respond(
        rows, page, key=lambda row: (row[4].isoformat(), str(row[0])), shape=_shape
    )


def get_user(user_id: str) -> dict[str, Any]:
    """One user with their personal account. Raises NotFound for an unknown id."""
    with db.transaction() as cur:
        return _view(cur, _user_id(user_id))


def update_user(
    user_id: str, changes: Any, *, actor: Principal | None, request: Request | None = None
) -> dict[str, Any]:
    """Set `is_admin` and/or `suspended` (the user's personal account's status); the
    user view. A suspended account's keys stop on their next request.

    Raises:
        NotFound: no such user. InvalidRequest: not an object of booleans `is_admin` and
            `suspended`, or a closed account to suspend or reactivate (param named).
    """
    found = _user_id(user_id)
    if not isinstance(changes, dict) or not changes:
        raise errors.InvalidRequest("Send is_admin and/or suspended.")
    for name, value in changes.items():
        if name not in _FIELDS:
            raise errors.InvalidRequest(f"{name} cannot be changed here.", param=name)
        if not isinstance(value, bool):
            raise errors.InvalidRequest(f"{name} must be true or false.", param=name)
    announce: str | None = None
    with db.transaction() as cur:
        before = _view(cur, found, lock=True)
        account_id = before["account"] and before["account"]["id"]
        if "is_admin" in changes and changes["is_admin"] != before["is_admin"]:
            cur.execute(
                "UPDATE users SET is_admin = %s, updated_at = now() WHERE id = %s",
                (changes["is_admin"], found),
            )
            _audit(cur, actor, request, account_id, "user.update", "user", found,
                   {"is_admin": before["is_admin"]}, {"is_admin": changes["is_admin"]})  # fmt: skip
        if "suspended" in changes:
            announce = _suspend(cur, before, changes["suspended"], actor, request)
        after = _view(cur, found)
    if announce is not None:
        auth.announce(announce)
    return after


def _suspend(
    cur: psycopg.Cursor[Any],
    user: dict[str, Any],
    suspended: bool,
    actor: Principal | None,
    request: Request | None,
) -> str | None:
    """Suspend or reactivate the user's personal account; its id when it changed."""
    account = user["account"]
    if account is None or account["status"] == "closed":
        raise errors.InvalidRequest(
            "This user has no open personal account to suspend or reactivate.",
            param="suspended",
        )
    status = "suspended" if suspended else "active"
    if account["status"] == status:
        return None
    cur.execute(
        "UPDATE accounts SET status = %s, updated_at = now() WHERE id = %s",
        (status, account["id"]),
    )
    action = "account.suspend" if suspended else "account.reactivate"
    _audit(cur, actor, request, account["id"], action, "account", account["id"],
           {"status": account["status"]}, {"status": status})  # fmt: skip
    return str(account["id"])


def _after(values: tuple[Any, ...]) -> list[Any]:
    """A users cursor's (created_at, id), checked: a forged one is a 400."""
    try:
        moment = datetime.fromisoformat(str(values[0]))
        return [moment, uuid.UUID(str(values[1]))]
    except ValueError:
        raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor") from None


def _user_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise errors.NotFound("No such user.") from None


def _view(cur: psycopg.Cursor[Any], user_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = cur.execute(
        f"{_USER} WHERE u.id = %s{' FOR UPDATE OF u' if lock else ''}", (user_id,)
    ).fetchone()
    if row is None:
        raise errors.NotFound("No such user.")
    return _shape(row)


def _shape(row: tuple[Any, ...]) -> dict[str, Any]:
    (user_id, email, display_name, is_admin, created_at, deleted_at, account_id, plan_id,
     status, balance, account_created) = row  # fmt: skip
    account = None
    if account_id is not None:
        account = {
            "id": str(account_id),
            "plan": plan_id,
            "status": status,
            "balance": float(money.nanos_to_usd(int(balance))),
            "created_at": account_created.isoformat(),
        }
    return {
        "id": str(user_id),
        "object": "user",
        "email": email,
        "display_name": display_name,
        "is_admin": is_admin,
        "suspended": status == "suspended",
        "account": account,
        "created_at": created_at.isoformat(),
        "deleted_at": None if deleted_at is None else deleted_at.isoformat(),
    }


def _audit(
    cur: psycopg.Cursor[Any],
    actor: Principal | None,
    request: Request | None,
    account_id: str | None,
    action: str,
    target_type: str,
    target_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit.record(
        cur, action=action, target_type=target_type, target_id=target_id,
        account_id=account_id, principal=actor, actor_kind=None if actor else "system",
        before=before, after=after, request=request,
    )  # fmt: skip
