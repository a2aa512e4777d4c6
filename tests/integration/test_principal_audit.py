"""Management principals (a key acting as its user, with that user's role) and the audit
log rows written for their changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from starlette.requests import Request

from gatewayz import db, errors
from gatewayz.identity import audit, principal
from tests.factories import new_key, new_member, new_owner

if TYPE_CHECKING:
    import psycopg

pytestmark = pytest.mark.usefixtures("database_url")


def request_with(secret: str, ip: str = "198.51.100.7") -> Request:
    scope = {
        "type": "http", "method": "GET", "path": "/v1/keys", "query_string": b"",
        "headers": [(b"authorization", f"Bearer {secret}".encode())],
        "client": (ip, 5000), "state": {"request_id": "req_audit_test"},
    }  # fmt: skip
    return Request(scope)


def test_a_key_acts_as_its_user_with_their_role() -> None:
    owner = new_owner()
    key = new_key(owner, scopes=["keys:read"])
    found = principal.from_request(request_with(key.secret), ("keys:read",))
    assert (found.user_id, found.account_id, found.role) == (
        owner.user_id,
        owner.account_id,
        "owner",
    )
    assert found.key is not None
    assert found.key.key_id == key.id
    assert found.manages
    principal.require_manager(found)


def test_a_member_is_not_a_manager() -> None:
    owner = new_owner()
    key = new_key(new_member(owner, "member"), scopes=["keys:write"])
    found = principal.from_request(request_with(key.secret), ("keys:write",))
    assert found.role == "member"
    with pytest.raises(errors.RoleDenied, match="owner or an admin"):
        principal.require_manager(found)


def test_a_key_without_the_scope_is_refused() -> None:
    key = new_key(new_owner(), scopes=["chat"])
    with pytest.raises(errors.ScopeDenied):
        principal.from_request(request_with(key.secret), ("keys:read", "keys:write"))


def test_an_audit_row_names_the_actor_the_change_and_where_it_came_from(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    key = new_key(owner, scopes=["keys:write"])
    request = request_with(key.secret, ip="203.0.113.5")
    actor = principal.from_request(request, ("keys:write",))
    with db.transaction() as cur:
        row_id = audit.record(
            cur, action="key.update", target_type="api_key", target_id=key.id,
            account_id=owner.account_id, principal=actor,
            before={"name": "a"}, after={"name": "b"}, request=request,
        )  # fmt: skip
    row = conn.execute(
        """SELECT account_id::text, actor_kind, actor_user_id::text, actor_key_id::text, action,
                  target_type, target_id, before, after, host(ip), request_id
             FROM audit_log WHERE id = %s""",
        (row_id,),
    ).fetchone()
    assert row == (
        owner.account_id, "key", owner.user_id, key.id, "key.update", "api_key", key.id,
        {"name": "a"}, {"name": "b"}, "203.0.113.5", "req_audit_test",
    )  # fmt: skip


def test_a_system_row_needs_no_principal_and_a_row_needs_an_actor(
    conn: psycopg.Connection,
) -> None:
    owner = new_owner()
    with db.transaction() as cur:
        row_id = audit.record(cur, action="key.rotate", target_type="api_key", target_id=None,
                              account_id=owner.account_id, actor_kind="system")  # fmt: skip
        with pytest.raises(ValueError, match="actor"):
            audit.record(cur, action="x", target_type="y", target_id=None, account_id=None)
    row = conn.execute(
        "SELECT actor_kind, actor_user_id, ip FROM audit_log WHERE id = %s", (row_id,)
    ).fetchone()
    assert row == ("system", None, None)
