"""Managing API keys through the API: create, list, read,
change, revoke and rotate, and the calling key's own limits and usage.

A key with `keys:read` reads, one with `keys:write` changes. Members reach only their
own keys; the account's owner and admins reach all of its keys. Any other key id
(another member's, another account's, or no key at all) is a 404 that changes nothing.
Every change writes its audit row in the same transaction, and once it has committed
the account's new auth version is announced, so warm functions refuse a revoked,
disabled or rotated-out key on its very next request.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from psycopg import sql

from gatewayz import config, db, errors, pagination
from gatewayz.identity import audit, auth, key_bounds, key_fields, key_views, keys, principal

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal

READ = ("keys:read",)
WRITE = ("keys:write",)
# API names whose column is named otherwise.
_COLUMNS = {"limit": "spend_limit_nanos", "rotation_period_days": "rotation_period"}


def create(request: Request, raw: bytes) -> dict[str, Any]:
    """`POST /v1/keys`: the new key, and its secret (the only time it is shown).

    Raises:
        InvalidRequest: a field is invalid. EscalationDenied: more than the caller holds.
        KeyLimitReached: the plan's `max_keys`. And what `principal.from_request` raises.
    """
    actor = principal.from_request(request, WRITE)
    body = key_fields.parse(key_fields.KeyCreate, raw)
    with db.transaction() as cur:
        grantor = key_bounds.load(cur, actor)
        wanted = key_bounds.defaults(grantor, body.settings())
        by_admin = key_bounds.check(grantor, wanted)
        key_bounds.require_room(cur, actor.account_id)
        columns = _columns(wanted, exclude=("name", "scopes", "environment"))
        if by_admin:
            columns["limits_set_by_admin"] = True
        new = keys.create(
            cur,
            account_id=actor.account_id,
            user_id=actor.user_id,
            name=body.name,
            pepper=config.key_hash_secret(),
            scopes=wanted["scopes"],
            environment=body.environment,
            **columns,
        )
        row = _row(cur, new.id)
        _audit(cur, actor, request, "key.create", new.id, None, key_views.settings(row))
    auth.announce(actor.account_id)
    return {"data": key_views.shape(row), "key": new.secret}


def list_keys(
    request: Request, limit: str | None, cursor: str | None, include_revoked: str | None
) -> dict[str, Any]:
    """`GET /v1/keys`: newest first, a page at a time; revoked keys only on request."""
    actor = principal.from_request(request, READ)
    page = pagination.parse(limit, cursor, width=2)
    if include_revoked not in (None, "true", "false"):
        raise errors.InvalidRequest(
            "include_revoked must be true or false.", param="include_revoked"
        )
    where, params = _reach(actor)
    if include_revoked != "true":
        where += sql.SQL(" AND k.revoked_at IS NULL")
    if page.after is not None:
        where += sql.SQL(" AND (k.created_at, k.id) < (%s, %s)")
        params += _after(page.after)
    rows = key_views.select(db.connection(), where, params, order=True, limit=page.limit + 1)
    return pagination.respond(
        rows,
        page,
        key=lambda row: (row["created_at"].isoformat(), str(row["id"])),
        shape=key_views.shape,
    )


def get(request: Request, key_id: str) -> dict[str, Any]:
    """`GET /v1/keys/{id}`. Raises NotFound for a key out of the caller's reach."""
    actor = principal.from_request(request, READ)
    with db.transaction() as cur:
        return {"data": key_views.shape(_target(cur, actor, key_id, lock=False))}


def update(request: Request, key_id: str, raw: bytes) -> dict[str, Any]:
    """`PATCH /v1/keys/{id}`: change the fields sent.

    Raises:
        NotFound, KeyRevoked (409), InvalidRequest, EscalationDenied.
    """
    actor = principal.from_request(request, WRITE)
    sent = key_fields.parse(key_fields.KeyUpdate, raw).settings()
    with db.transaction() as cur:
        before = _target(cur, actor, key_id)
        if before["revoked_at"] is not None:
            raise errors.KeyRevoked("This API key is revoked; it can no longer be changed.")
        # A limit and its reset grant together: check the pair the key will have.
        checked = dict(sent)
        if "limit" in sent or "limit_reset" in sent:
            checked.setdefault("limit", before["spend_limit_nanos"])
            checked.setdefault("limit_reset", before["limit_reset"])
        by_admin = key_bounds.check(key_bounds.load(cur, actor), checked)
        columns = _columns(sent)
        if by_admin:
            columns["limits_set_by_admin"] = True
        assignments: list[sql.Composable] = [
            sql.SQL("{} = %s").format(sql.Identifier(name)) for name in columns
        ]
        params: list[Any] = list(columns.values())
        if "limit_reset" in sent and sent["limit_reset"] != before["limit_reset"]:
            # Count the new window's spend afresh from the key's usage.
            assignments.append(sql.SQL(_RECOUNT))
            params += [sent["limit_reset"]] * 2
        if assignments:
            cur.execute(
                sql.SQL("UPDATE api_keys SET {}, updated_at = now() WHERE id = %s").format(
                    sql.SQL(", ").join(assignments)
                ),
                (*params, before["id"]),
            )
        after = _row(cur, str(before["id"]))
        if key_views.settings(after) != key_views.settings(before):
            _audit(cur, actor, request, "key.update", str(before["id"]),
                   key_views.settings(before), key_views.settings(after))  # fmt: skip
    auth.announce(actor.account_id)
    return {"data": key_views.shape(after)}


def revoke(request: Request, key_id: str) -> dict[str, Any]:
    """`DELETE /v1/keys/{id}`: revoke the key now; the revoked key. Revoking a revoked
    key changes nothing and answers it as it is."""
    actor = principal.from_request(request, WRITE)
    with db.transaction() as cur:
        before = _target(cur, actor, key_id)
        version = keys.revoke(cur, str(before["id"]), actor.account_id)
        after = _row(cur, str(before["id"]))
        if version is not None:
            _audit(cur, actor, request, "key.revoke", str(before["id"]),
                   key_views.settings(before), key_views.settings(after))  # fmt: skip
    if version is not None:
        auth.announce(actor.account_id, version)
    return {"data": key_views.shape(after)}


def rotate(request: Request, key_id: str, raw: bytes) -> dict[str, Any]:
    """`POST /v1/keys/{id}/rotate`: a new secret for the same key; the one it replaces
    works for `grace_period_hours` more (0: not at all).

    Raises:
        NotFound, KeyRevoked (409), InvalidRequest, EscalationDenied (the key holds more
        than the caller, who would learn its secret).
    """
    actor = principal.from_request(request, WRITE)
    body = key_fields.parse(key_fields.KeyRotate, raw)
    with db.transaction() as cur:
        before = _target(cur, actor, key_id)
        if before["revoked_at"] is not None:
            raise errors.KeyRevoked("This API key is revoked; it can no longer be rotated.")
        grantor = key_bounds.load(cur, actor)
        key_bounds.check(grantor, key_bounds.of_key(before), against_plan=False)
        new = keys.rotate(cur, str(before["id"]), environment=before["environment"],
                          pepper=config.key_hash_secret(), grace=body.grace)  # fmt: skip
        after = _row(cur, new.id)
        _audit(cur, actor, request, "key.rotate", new.id,
               {"prefix": before["prefix"], "last4": before["last4"]},
               {"prefix": new.prefix, "last4": new.last4,
                "grace_period_hours": body.grace_period_hours})  # fmt: skip
    auth.announce(actor.account_id)
    return {"data": key_views.shape(after), "key": new.secret}


def current(request: Request) -> dict[str, Any]:
    """`GET /v1/key`: the calling key (any scope), OpenRouter's `/key` fields and more."""
    actor = principal.from_key(request, keys.SCOPES)
    assert actor.key is not None
    rows = key_views.select(db.connection(), sql.SQL("k.id = %s"), (actor.key.key_id,))
    return {"data": key_views.current(rows[0], actor.key)}


_RECOUNT = """spent_nanos = (SELECT coalesce(sum(r.cost_nanos), 0) FROM usage_records r
                  WHERE r.api_key_id = api_keys.id
                    AND r.created_at >= coalesce(key_limit_window_start(%s, now()), '-infinity')),
              spent_since = coalesce(key_limit_window_start(%s, now()), api_keys.created_at)"""


def _reach(actor: Principal) -> tuple[sql.Composed, tuple[Any, ...]]:
    """The keys `actor` may see: the account's for its owner and admins, else their own."""
    if actor.manages:
        return sql.SQL("k.account_id = %s").format(), (actor.account_id,)
    return sql.SQL("k.account_id = %s AND k.user_id = %s").format(), (
        actor.account_id,
        actor.user_id,
    )


def _target(
    cur: psycopg.Cursor[Any], actor: Principal, key_id: str, *, lock: bool = True
) -> dict[str, Any]:
    """The key `key_id` if `actor` may reach it, locked for the change to come.

    Raises:
        NotFound: no such key within reach (the same answer for every reason).
    """
    try:
        uuid.UUID(key_id)
    except ValueError:
        raise errors.NotFound(f"No API key with id {key_id!r}.", param="id") from None
    where, params = _reach(actor)
    where = sql.SQL("k.id = %s AND ") + where
    if lock:
        cur.execute(sql.SQL("SELECT 1 FROM api_keys k WHERE {} FOR UPDATE").format(where),
                    (key_id, *params))  # fmt: skip
    rows = key_views.select(cur.connection, where, (key_id, *params))
    if not rows:
        raise errors.NotFound(f"No API key with id {key_id!r}.", param="id")
    return rows[0]


def _row(cur: psycopg.Cursor[Any], key_id: str) -> dict[str, Any]:
    return key_views.select(cur.connection, sql.SQL("k.id = %s"), (key_id,))[0]


def _columns(settings: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        _COLUMNS.get(name, name): value for name, value in settings.items() if name not in exclude
    }


def _after(values: tuple[Any, ...]) -> tuple[datetime, str]:
    """A key cursor's (created_at, id).

    Raises:
        InvalidRequest: not a cursor of this list.
    """
    try:
        return datetime.fromisoformat(str(values[0])), str(uuid.UUID(str(values[1])))
    except ValueError:
        raise errors.InvalidRequest("cursor is not valid for this list.", param="cursor") from None


def _audit(
    cur: psycopg.Cursor[Any],
    actor: Principal,
    request: Request,
    action: str,
    key_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit.record(cur, action=action, target_type="api_key", target_id=key_id,
                 account_id=actor.account_id, principal=actor, before=before, after=after,
                 request=request)  # fmt: skip
