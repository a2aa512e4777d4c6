"""The audit log: every change to keys, credits, plans, roles and coupons, with who made
it, from where, and the object before and after.

`audit_log` is append-only (a trigger refuses UPDATE and DELETE). Write the row in the
same transaction as the change it describes, so neither exists without the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatewayz import http

if TYPE_CHECKING:
    import psycopg
    from starlette.requests import Request

    from gatewayz.identity.principal import Principal


def record(
    cur: psycopg.Cursor[Any],
    *,
    action: str,
    target_type: str,
    target_id: str | None,
    account_id: str | None,
    principal: Principal | None = None,
    actor_kind: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request: Request | None = None,
) -> int:
    """Append one row; its id. The actor is `principal` (as the key or the user it acted
    as), else `actor_kind` (`system` for scheduled jobs, `stripe` for webhooks). Never
    put a secret in `before`/`after`."""
    from psycopg.types.json import Jsonb

    kind = principal.actor_kind if principal is not None else actor_kind
    if kind is None:
        raise ValueError("an audit row needs a principal or an actor_kind")
    ip = http.client_ip(request) if request is not None else None
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    row = cur.execute(
        """INSERT INTO audit_log (account_id, actor_kind, actor_user_id, actor_key_id, action,
                                  target_type, target_id, before, after, ip, request_id)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            account_id,
            kind,
            principal.user_id if principal is not None else None,
            principal.key.key_id if principal is not None and principal.key is not None else None,
            action,
            target_type,
            target_id,
            Jsonb(before) if before is not None else None,
            Jsonb(after) if after is not None else None,
            ip,
            request_id,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
