"""`/v1/provider-keys` (bring-your-own-key) through the keys function's real app: stored
encrypted, shown without the secret, replaced, deleted, managers only, per account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from starlette.testclient import TestClient

from gatewayz import config, crypto, db
from tests.conftest import reset_caches
from tests.factories import new_key, new_member, new_owner
from tests.functions.events import event, function, invoke, json_body

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from gatewayz.identity.accounts import Owner

pytestmark = pytest.mark.usefixtures("database_url")

SECRET = "sk-or-v1-9f8e7d6c5b4a39281706"
OTHER_SECRET = "sk-or-v1-aaaabbbbccccddddWXYZ"


@pytest.fixture
def encryption_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    key = crypto.new_key()
    monkeypatch.setenv("ENCRYPTION_KEYS", key)
    reset_caches()
    yield key
    monkeypatch.undo()
    reset_caches()


@pytest.fixture
def api() -> Iterator[TestClient]:
    with TestClient(function("keys").app, client=("198.51.100.4", 5000)) as client:
        yield client


@pytest.fixture
def owner(encryption_key: str) -> Owner:
    return new_owner()


def bearer(owner: Owner, scopes: tuple[str, ...] = ("keys:read", "keys:write")) -> dict[str, str]:
    return {"authorization": f"Bearer {new_key(owner, scopes=scopes).secret}"}


def store(api: TestClient, headers: dict[str, str], provider: str, key: str) -> httpx.Response:
    return api.post("/v1/provider-keys", json={"provider": provider, "key": key}, headers=headers)


def stored_rows(account_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT provider, encrypted_key, key_last4, c::text FROM provider_credentials c
            WHERE account_id = %s ORDER BY provider""",
        (account_id,),
    ).fetchall()


def audit_rows(account_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        """SELECT action, target_id, before, after, actor_kind, host(ip), a::text
             FROM audit_log a WHERE account_id = %s AND target_type = 'provider_key'
            ORDER BY id""",
        (account_id,),
    ).fetchall()


def test_a_key_is_stored_encrypted_and_shown_without_its_secret(
    api: TestClient, owner: Owner
) -> None:
    headers = bearer(owner)
    created = store(api, headers, "openrouter", SECRET)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert set(data) == {"id", "object", "provider", "last4", "created_at", "updated_at"}
    assert (data["provider"], data["last4"]) == ("openrouter", SECRET[-4:])
    assert SECRET not in created.text

    ((provider, sealed, last4, whole),) = stored_rows(owner.account_id)
    assert (provider, last4) == ("openrouter", SECRET[-4:])
    assert SECRET not in whole
    assert crypto.decrypt(sealed) == SECRET

    listed = api.get("/v1/provider-keys", headers=headers)
    assert listed.status_code == 200
    assert listed.json() == {"data": [data], "next_cursor": None}
    assert SECRET not in listed.text

    ((action, target, before, after, actor, ip, whole_audit),) = audit_rows(owner.account_id)
    assert (action, target, before, actor, ip) == (
        "provider_key.create", data["id"], None, "key", "198.51.100.4"
    )  # fmt: skip
    assert after == {"provider": "openrouter", "last4": SECRET[-4:]}
    assert SECRET not in whole_audit


def test_storing_again_replaces_the_key_for_that_provider(api: TestClient, owner: Owner) -> None:
    headers = bearer(owner)
    first = store(api, headers, "openrouter", SECRET).json()["data"]
    again = store(api, headers, "openrouter", OTHER_SECRET)
    assert again.status_code == 200
    data = again.json()["data"]
    assert (data["id"], data["last4"]) == (first["id"], "WXYZ")
    assert data["updated_at"] >= first["updated_at"]
    ((_, sealed, _, _),) = stored_rows(owner.account_id)
    assert crypto.decrypt(sealed) == OTHER_SECRET
    actions = [(a, b, c) for a, _, b, c, *_ in audit_rows(owner.account_id)]
    assert actions[-1] == (
        "provider_key.replace",
        {"provider": "openrouter", "last4": SECRET[-4:]},
        {"provider": "openrouter", "last4": "WXYZ"},
    )


def test_a_list_pages_by_provider(api: TestClient, owner: Owner) -> None:
    headers = bearer(owner)
    for provider in ("portkey", "chutes", "openrouter"):
        assert store(api, headers, provider, f"{provider}-key-0001").status_code == 201
    first = api.get("/v1/provider-keys?limit=2", headers=headers).json()
    assert [k["provider"] for k in first["data"]] == ["chutes", "openrouter"]
    assert first["next_cursor"] is not None
    rest = api.get(f"/v1/provider-keys?limit=2&cursor={first['next_cursor']}", headers=headers)
    assert [k["provider"] for k in rest.json()["data"]] == ["portkey"]
    assert rest.json()["next_cursor"] is None


def test_a_key_is_deleted_by_provider_or_by_id(api: TestClient, owner: Owner) -> None:
    headers = bearer(owner)
    store(api, headers, "openrouter", SECRET)
    chutes = store(api, headers, "chutes", OTHER_SECRET).json()["data"]
    gone = api.delete("/v1/provider-keys/openrouter", headers=headers)
    assert gone.status_code == 200
    assert gone.json()["data"]["provider"] == "openrouter"
    assert gone.json()["data"]["deleted"] is True
    assert api.delete(f"/v1/provider-keys/{chutes['id']}", headers=headers).status_code == 200
    assert stored_rows(owner.account_id) == []
    assert api.get("/v1/provider-keys", headers=headers).json()["data"] == []
    again = api.delete("/v1/provider-keys/openrouter", headers=headers)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"
    deleted = [(a, b) for a, _, b, *_ in audit_rows(owner.account_id) if a.endswith("delete")]
    assert deleted == [
        ("provider_key.delete", {"provider": "openrouter", "last4": SECRET[-4:]}),
        ("provider_key.delete", {"provider": "chutes", "last4": "WXYZ"}),
    ]


def test_another_accounts_key_is_not_found_and_untouched(api: TestClient, owner: Owner) -> None:
    theirs = store(api, bearer(owner), "openrouter", SECRET).json()["data"]
    stranger = bearer(new_owner())
    for ref in (theirs["id"], "openrouter", "not-a-uuid"):
        refused = api.delete(f"/v1/provider-keys/{ref}", headers=stranger)
        assert refused.status_code == 404, ref
    assert api.get("/v1/provider-keys", headers=stranger).json()["data"] == []
    assert len(stored_rows(owner.account_id)) == 1


def test_a_member_may_neither_store_nor_list_nor_delete(api: TestClient, owner: Owner) -> None:
    store(api, bearer(owner), "openrouter", SECRET)
    member_key = new_key(new_member(owner, "member"), scopes=["keys:read", "keys:write"])
    headers = {"authorization": f"Bearer {member_key.secret}"}
    answers = [
        store(api, headers, "openrouter", OTHER_SECRET),
        api.get("/v1/provider-keys", headers=headers),
        api.delete("/v1/provider-keys/openrouter", headers=headers),
    ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"]["code"] == "role_denied"
    ((_, sealed, _, _),) = stored_rows(owner.account_id)
    assert crypto.decrypt(sealed) == SECRET


def test_scopes_are_required(api: TestClient, owner: Owner) -> None:
    chat_only = bearer(owner, ("chat",))
    assert store(api, chat_only, "openrouter", SECRET).status_code == 403
    read_only = bearer(owner, ("keys:read",))
    refused = store(api, read_only, "openrouter", SECRET)
    assert refused.json()["error"]["code"] == "scope_denied"
    assert api.get("/v1/provider-keys", headers=read_only).status_code == 200
    assert api.post("/v1/provider-keys", json={}).status_code == 401
    assert stored_rows(owner.account_id) == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"provider": "openai", "key": SECRET}, "provider"),
        ({"provider": "mock", "key": SECRET}, "provider"),
        ({"provider": "openrouter"}, "key"),
        ({"provider": "openrouter", "key": 12345678}, "key"),
        ({"provider": "openrouter", "key": "short"}, "key"),
        ({"provider": "openrouter", "key": "sk-or v1 with spaces"}, "key"),
        ({"provider": "openrouter", "key": SECRET, "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_a_400_naming_the_param_without_echoing_the_key(
    api: TestClient, owner: Owner, body: dict[str, Any], param: str
) -> None:
    answer = api.post("/v1/provider-keys", json=body, headers=bearer(owner))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert str(body.get("key")) not in answer.text
    assert stored_rows(owner.account_id) == []


def test_a_bad_limit_is_a_400(api: TestClient, owner: Owner) -> None:
    for limit in ("0", "101", "x", "-1"):
        answer = api.get(f"/v1/provider-keys?limit={limit}", headers=bearer(owner))
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == "limit"


def test_without_encryption_keys_nothing_is_stored_and_the_503_names_the_setting(
    api: TestClient, database_url: str
) -> None:
    config.get_settings.cache_clear()
    owner = new_owner()
    answer = store(api, bearer(owner), "openrouter", SECRET)
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert (error["code"], error["metadata"]) == (
        "missing_configuration", {"setting": "ENCRYPTION_KEYS"}
    )  # fmt: skip
    assert stored_rows(owner.account_id) == []


def test_a_real_api_gateway_event_stores_a_key(owner: Owner) -> None:
    secret = new_key(owner, scopes=("keys:write",)).secret
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    lambda_event = event(
        "keys",
        path="/v1/provider-keys",
        httpMethod="POST",
        headers=headers,
        body='{"provider": "featherless", "key": "fl-0123456789"}',
    )
    result = invoke("keys", lambda_event)
    assert result["statusCode"] == 201, result["body"]
    assert json_body(result)["data"]["provider"] == "featherless"
    assert "fl-0123456789" not in result["body"]
