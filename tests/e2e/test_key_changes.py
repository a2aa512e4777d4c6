"""Across warm gateway processes sharing Redis: a revoked key,
or one whose user left the account, is refused on the very next request in every process;
and a refused request gives its rate-limit counts back at once, so a key stuck at 402
cannot starve its siblings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from gatewayz import db
from gatewayz.identity import accounts, auth, keys
from gatewayz.ratelimit.redis import RedisStore
from tests.e2e.conftest import MODEL, new_account
from tests.factories import new_key

if TYPE_CHECKING:
    from tests.e2e.conftest import Account

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def redis_store(redis_url: str) -> RedisStore:
    """The store the gateway processes use, as the keys API would reach it."""
    return RedisStore.from_url(redis_url)


def ask(base_url: str, secret: str, **fields: object) -> httpx.Response:
    body = {"model": MODEL, "messages": HELLO, **fields}
    headers = {"authorization": f"Bearer {secret}"}
    return httpx.post(f"{base_url}/chat/completions", json=body, headers=headers, timeout=30)


def error_code(response: httpx.Response) -> str:
    assert response.status_code >= 400, response.text
    return str(response.json()["error"]["code"])


def warm(redis_gateways: list[str], account: Account) -> None:
    """Every process has served, and so cached, the account's key."""
    for base_url in redis_gateways:
        assert ask(base_url, account.secret).status_code == 200


def test_a_revoked_key_is_refused_on_the_next_request_in_every_process(
    redis_gateways: list[str], redis_store: RedisStore
) -> None:
    account = new_account()
    warm(redis_gateways, account)
    # What the keys API does: revoke in one transaction, announce once it committed.
    with db.transaction() as cur:
        version = keys.revoke(cur, account.key_id, account.account_id)
    auth.announce(account.account_id, version, store=redis_store)
    for base_url in redis_gateways:
        refused = ask(base_url, account.secret)
        assert (refused.status_code, error_code(refused)) == (401, "revoked_api_key")


def test_a_key_is_refused_once_its_users_membership_ends(
    redis_gateways: list[str], redis_store: RedisStore
) -> None:
    account = new_account()
    warm(redis_gateways, account)
    db.execute(
        "DELETE FROM memberships WHERE account_id = %s AND user_id = %s",
        (account.account_id, account.user_id),
    )
    auth.announce(account.account_id, store=redis_store)
    refused = ask(redis_gateways[0], account.secret)
    assert (refused.status_code, error_code(refused)) == (401, "revoked_api_key")
    assert "no longer a member" in refused.json()["error"]["message"]


def test_other_keys_of_the_account_keep_working_after_one_is_revoked(
    redis_gateways: list[str], redis_store: RedisStore
) -> None:
    account = new_account()
    owner = accounts.Owner(user_id=account.user_id, account_id=account.account_id)
    other = new_key(owner).secret
    for base_url in redis_gateways:
        assert ask(base_url, other).status_code == 200
    with db.transaction() as cur:
        version = keys.revoke(cur, account.key_id, account.account_id)
    auth.announce(account.account_id, version, store=redis_store)
    for base_url in redis_gateways:
        assert ask(base_url, other).status_code == 200  # looked up again, still valid


def test_a_key_refused_for_its_spend_limit_does_not_starve_its_siblings(
    redis_gateways: list[str],
) -> None:
    account = new_account()
    owner = accounts.Owner(user_id=account.user_id, account_id=account.account_id)
    capped = new_key(owner, spend_limit_nanos=1).secret
    # Each is counted (its whole output cap in the tokens window), then refused.
    for i in range(4):
        refused = ask(redis_gateways[i % 2], capped, max_tokens=1_024)
        assert (refused.status_code, error_code(refused)) == (402, "insufficient_credits")
    for base_url in redis_gateways:
        served = ask(base_url, account.secret)
        assert served.status_code == 200, served.text
    # The refusals took nothing: the window holds only what the two answers counted.
    remaining = int(served.headers["x-ratelimit-remaining-requests"])
    assert remaining == int(served.headers["x-ratelimit-limit-requests"]) - 2
