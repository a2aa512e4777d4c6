"""The key routes with a Supabase session as the bearer: a signed-in user manages their
account's keys with the scopes of their role, and no key restrictions of their own."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from tests.functions.test_account import Person, bearer, client, error_of, fake, sign_up

if TYPE_CHECKING:
    import httpx

    from tests.fakes.supabase_auth import FakeAuth

__all__ = ["client", "fake"]  # the fixtures, shared with the account routes' tests
pytestmark = pytest.mark.usefixtures("database_url")


async def test_a_session_creates_rotates_and_revokes_keys(
    client: httpx.AsyncClient, fake: FakeAuth
) -> None:
    person = Person(fake)
    await sign_up(client, person)
    body = {"name": "app", "scopes": ["chat"], "allowed_models": ["mock/*"], "limit": 1,
            "limit_reset": "daily", "requests_per_minute": 5}  # fmt: skip
    created = await client.post("/v1/keys", json=body, headers=person.headers())
    assert created.status_code == 201, created.text
    key: dict[str, Any] = created.json()["data"]
    assert (key["scopes"], key["allowed_models"], key["limit"]) == (["chat"], ["mock/*"], 1)
    listed = await client.get("/v1/keys", headers=person.headers())
    assert key["id"] in [k["id"] for k in listed.json()["data"]]

    rotate = f"/v1/keys/{key['id']}/rotate"
    rotated = await client.post(rotate, json={"grace_period_hours": 0}, headers=person.headers())
    assert rotated.status_code == 200, rotated.text
    old, new = created.json()["key"], rotated.json()["key"]
    error_of(await client.get("/v1/key", headers=bearer(old)), 401, "revoked_api_key")
    assert (await client.get("/v1/key", headers=bearer(new))).status_code == 200

    revoked = await client.delete(f"/v1/keys/{key['id']}", headers=person.headers())
    assert revoked.json()["data"]["revoked_at"] is not None
    error_of(await client.get("/v1/key", headers=bearer(new)), 401, "revoked_api_key")
    with db.connect(db.database_url()) as conn:
        actions = [row[0] for row in conn.execute(
            "SELECT action FROM audit_log WHERE target_id = %s AND actor_kind = 'user'"
            " ORDER BY id", (key["id"],))]  # fmt: skip
    assert actions == ["key.create", "key.rotate", "key.revoke"]


async def test_a_session_cannot_grant_a_scope_its_role_lacks(
    client: httpx.AsyncClient, fake: FakeAuth
) -> None:
    person = Person(fake)
    await sign_up(client, person)
    refused = await client.post("/v1/keys", json={"name": "x", "scopes": ["admin"]},
                                headers=person.headers())  # fmt: skip
    error_of(refused, 403, "escalation_denied")
