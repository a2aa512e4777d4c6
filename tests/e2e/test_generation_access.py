"""`GET /v1/generation` applies the key's scopes, IP and origin allowlists like every other
route, and refuses an id it cannot look up with a 400, through the running gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from gatewayz import db
from gatewayz.identity import accounts
from tests.e2e.conftest import MODEL, new_account
from tests.factories import new_key

if TYPE_CHECKING:
    from tests.e2e.conftest import Account

HELLO = [{"role": "user", "content": "hi"}]


def generation(gateway: str, secret: str, generation_id: str, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{gateway}/generation",
        params={"id": generation_id},
        headers={"authorization": f"Bearer {secret}", **headers},
    )


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def served_request(gateway: str, account: Account) -> str:
    """Make a completion with the account's key; its request id."""
    client = openai.OpenAI(base_url=gateway, api_key=account.secret, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    return raw.headers["x-request-id"]


def sibling_key(account: Account, scopes: tuple[str, ...], **columns: object) -> str:
    """Another key of the account: its secret."""
    owner = accounts.Owner(user_id=account.user_id, account_id=account.account_id)
    return new_key(owner, scopes=scopes, **columns).secret


def test_a_key_needs_generations_read_or_chat(gateway: str) -> None:
    account = new_account()
    request_id = served_request(gateway, account)
    models_only = sibling_key(account, ("models:read",))
    refused = generation(gateway, models_only, request_id)
    assert (refused.status_code, code(refused)) == (403, "scope_denied")
    assert "generations:read" in refused.json()["error"]["message"]
    reader = sibling_key(account, ("generations:read",))
    found = generation(gateway, reader, request_id)
    assert found.status_code == 200, found.text
    assert found.json()["data"]["request_id"] == request_id
    assert generation(gateway, account.secret, request_id).status_code == 200  # `chat`


def test_the_keys_ip_allowlist_applies(gateway: str) -> None:
    # The gateway sees this test from 127.0.0.1.
    account = new_account()
    request_id = served_request(gateway, account)
    elsewhere = sibling_key(account, ("generations:read",), allowed_cidrs=["10.0.0.0/8"])
    refused = generation(gateway, elsewhere, request_id, **{"x-forwarded-for": "10.1.2.3"})
    assert (refused.status_code, code(refused)) == (403, "ip_not_allowed")
    here = sibling_key(account, ("generations:read",), allowed_cidrs=["127.0.0.0/8", "::1/128"])
    assert generation(gateway, here, request_id).status_code == 200


def test_the_keys_origin_allowlist_applies(gateway: str) -> None:
    account = new_account()
    request_id = served_request(gateway, account)
    browser = sibling_key(account, ("generations:read",), allowed_referers=["app.example.com"])
    for headers in ({}, {"origin": "https://evil.example.net"}, {
        "origin": "https://evil.com\\@app.example.com"
    }):  # fmt: skip
        refused = generation(gateway, browser, request_id, **headers)
        assert (refused.status_code, code(refused)) == (403, "referer_not_allowed"), headers
    allowed = generation(gateway, browser, request_id, origin="https://app.example.com")
    assert allowed.status_code == 200


@pytest.mark.parametrize("bad_id", ["\x00", "req_\x00x", "a\nb", "", "x" * 201])
def test_an_id_that_cannot_be_looked_up_is_a_400_naming_it(gateway: str, bad_id: str) -> None:
    refused = generation(gateway, new_account().secret, bad_id)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "id")


def test_no_id_is_a_400_naming_it_but_only_to_a_valid_key(gateway: str) -> None:
    secret = new_account().secret
    missing = httpx.get(f"{gateway}/generation", headers={"authorization": f"Bearer {secret}"})
    assert missing.status_code == 400, missing.text
    error = missing.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "id")
    assert httpx.get(f"{gateway}/generation").status_code == 401  # no key: nothing about it


def test_a_long_id_within_bounds_is_simply_not_found(gateway: str) -> None:
    missing = generation(gateway, new_account().secret, "x" * 200)
    assert (missing.status_code, code(missing)) == (404, "not_found")


def test_a_revoked_key_reads_nothing_even_while_cached(gateway: str) -> None:
    account = new_account()
    request_id = served_request(gateway, account)
    assert generation(gateway, account.secret, request_id).status_code == 200
    # Revoked behind the gateway's back (no announcement): the route looks keys up fresh.
    db.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (account.key_id,))
    refused = generation(gateway, account.secret, request_id)
    assert (refused.status_code, code(refused)) == (401, "revoked_api_key")
