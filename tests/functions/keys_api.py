"""Calling the keys function's routes (or another function's: `group`) as API Gateway
does: a real REST event through its Mangum handler, with the client IP in the request
context."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gatewayz.identity import keys
from tests.factories import new_key, new_member
from tests.functions.events import event, header, invoke

if TYPE_CHECKING:
    import psycopg

    from gatewayz.identity.accounts import Owner

CLIENT_IP = "203.0.113.7"


@dataclass(frozen=True)
class Reply:
    """A response: its status, its JSON body (None when not JSON), the raw body, and its
    Content-Type."""

    status: int
    body: Any
    raw: str
    content_type: str | None = None

    @property
    def code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error["code"] if error else None


def call(
    method: str,
    path: str,
    secret: str | None = None,
    body: Any = None,
    *,
    ip: str = CLIENT_IP,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    group: str = "keys",
) -> Reply:
    """One request to the function of `group`; `ip` is the source API Gateway saw."""
    sent = {"Host": "api.example.com", "Accept": "application/json", **(headers or {})}
    if secret is not None:
        sent["Authorization"] = f"Bearer {secret}"
    raw_body = None
    if body is not None:
        raw_body = body if isinstance(body, str) else json.dumps(body)
        sent["Content-Type"] = "application/json"
        sent["Content-Length"] = str(len(raw_body.encode()))
    lambda_event = event(
        group,
        httpMethod=method,
        path=path,
        headers=sent,
        body=raw_body,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
    )
    lambda_event["requestContext"]["identity"]["sourceIp"] = ip
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    result = invoke(group, lambda_event)
    try:
        body = json.loads(result["body"])
    except ValueError:
        body = None
    return Reply(result["statusCode"], body, result["body"], header(result, "content-type"))


def member_key(owner: Owner, role: str, scopes: tuple[str, ...] = keys.DEFAULT_SCOPES) -> Any:
    """A new user with `role` in the owner's account, and a key of theirs."""
    return new_key(new_member(owner, role), scopes=scopes)


def audit_rows(conn: psycopg.Connection, key_id: str) -> list[tuple[Any, ...]]:
    """(action, actor_kind, actor_key_id, before, after) of a key's audit rows, oldest first."""
    return conn.execute(
        """SELECT action, actor_kind, actor_key_id::text, before, after FROM audit_log
            WHERE target_type = 'api_key' AND target_id = %s ORDER BY id""",
        (key_id,),
    ).fetchall()


def key_row(conn: psycopg.Connection, key_id: str) -> tuple[Any, ...]:
    """What a change could touch: (name, scopes, disabled, revoked_at, updated_at)."""
    row = conn.execute(
        "SELECT name, scopes, disabled, revoked_at, updated_at FROM api_keys WHERE id = %s",
        (key_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)
