"""The keys API and warm chat functions: a key revoked, disabled or
rotated out through the API a moment ago is refused on its very next chat request in
every warm process, which had it cached."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import reset_caches
from tests.e2e.conftest import new_account
from tests.e2e.test_key_changes import ask, error_code, warm

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def keys_api(gateway: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The local gateway's base URL, its keys function announcing changes to the Redis
    the chat processes share (as every deployed function does)."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    reset_caches()
    yield gateway
    monkeypatch.undo()
    reset_caches()


def manage(
    base_url: str, secret: str, method: str, path: str, body: object = None
) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"}
    return httpx.request(method, f"{base_url}{path}", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("DELETE", "", None, "revoked_api_key"),
        ("PATCH", "", {"disabled": True}, "disabled_api_key"),
        ("POST", "/rotate", {"grace_period_hours": 0}, "revoked_api_key"),
    ],
    ids=["revoked", "disabled", "rotated_without_grace"],
)
def test_a_key_changed_through_the_api_is_refused_by_warm_chat_functions(
    keys_api: str, redis_gateways: list[str], method: str, path: str, body: object, code: str
) -> None:
    account = new_account()
    warm(redis_gateways, account)
    changed = manage(keys_api, account.secret, method, f"/keys/{account.key_id}{path}", body)
    assert changed.status_code == 200, changed.text
    for base_url in redis_gateways:
        refused = ask(base_url, account.secret)
        assert (refused.status_code, error_code(refused)) == (401, code)
    if method == "POST":  # the new secret works everywhere at once
        for base_url in redis_gateways:
            assert ask(base_url, changed.json()["key"]).status_code == 200
