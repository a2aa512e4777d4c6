"""Bring-your-own-key end to end: the account stores its own OpenRouter key through
`/v1/provider-keys`, the official `openai` SDK chats through the gateway, and the fake
OpenRouter sees the account's key; the account pays only BYOK_FEE_PERCENT (5 %) of the
catalog cost, rounded up, and the ledger still adds up."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz import config, crypto, db
from tests import ledger
from tests.e2e.conftest import INPUT_NANOS, MODEL, OUTPUT_NANOS, ledger_usage, prompt_bound
from tests.fakes.openai_upstream import Behaviour

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

    from tests.e2e.conftest import Account, Upstreams

HELLO = [{"role": "user", "content": "hello there world"}]
OWN_KEY = "sk-or-v1-customer-own-key-7f3a"
OUR_KEY = "sk-or-test"  # tests/e2e/conftest.py ENV


@pytest.fixture(scope="module", autouse=True)
def encryption_keys(gateway: str) -> Iterator[None]:
    os.environ["ENCRYPTION_KEYS"] = crypto.new_key()
    config.get_settings.cache_clear()
    yield
    os.environ.pop("ENCRYPTION_KEYS", None)
    config.get_settings.cache_clear()


@pytest.fixture
def own_key(gateway: str, account: Account) -> str:
    """The account's own OpenRouter key, stored through the keys function."""
    answer = httpx.post(
        f"{gateway}/provider-keys",
        json={"provider": "openrouter", "key": OWN_KEY},
        headers={"authorization": f"Bearer {account.secret}"},
    )
    assert answer.status_code == 201, answer.text
    return OWN_KEY


def catalog_nanos(prompt_tokens: int, completion_tokens: int) -> int:
    return prompt_tokens * INPUT_NANOS + completion_tokens * OUTPUT_NANOS


def fee(nanos: int) -> int:
    return -(-nanos * 5 // 100)  # 5 %, rounded up


def usage_row(account: Account) -> dict[str, Any]:
    row = db.execute(
        """SELECT provider, is_byok, cost_nanos, upstream_cost_nanos, fee_nanos, held_nanos
             FROM usage_records WHERE account_id = %s ORDER BY created_at DESC LIMIT 1""",
        (account.account_id,),
    ).fetchone()
    assert row is not None
    names = ("provider", "is_byok", "cost", "upstream_cost", "fee", "held")
    return dict(zip(names, row, strict=True))


def extra(usage: object) -> dict[str, Any]:
    """The usage fields beyond OpenAI's (`cost`, `is_byok`, `cost_details`)."""
    return dict(getattr(usage, "model_extra", None) or {})


def test_the_accounts_own_key_serves_the_request_and_only_the_fee_is_charged(
    gateway: str,
    client: openai.OpenAI,
    account: Account,
    upstreams: Upstreams,
    own_key: str,
    conn: psycopg.Connection,
) -> None:
    before = account.balance()
    answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "hello there world"
    assert upstreams.primary.last.headers["authorization"] == f"Bearer {own_key}"
    assert upstreams.secondary.requests == []

    usage = answer.usage
    assert usage is not None
    catalog = catalog_nanos(usage.prompt_tokens, usage.completion_tokens)
    charged = fee(catalog)
    assert 0 < charged < catalog
    fields = extra(usage)
    assert round(fields["cost"] * 1e9) == charged
    assert fields["is_byok"] is True
    details = fields["cost_details"]
    assert round(details["upstream_inference_cost"] * 1e9) == catalog
    assert round(details["byok_fee"] * 1e9) == charged

    assert before - account.balance() == charged
    assert ledger_usage(account.account_id)[-1][0] == -charged
    row = usage_row(account)
    assert row["provider"] == "openrouter"
    assert row["is_byok"] is True
    assert (row["cost"], row["upstream_cost"], row["fee"]) == (charged, catalog, 0)
    assert ledger.invariant_holds(conn, account.account_id)

    generation = httpx.get(
        f"{gateway}/generation",
        params={"id": answer.id},
        headers={"authorization": f"Bearer {account.secret}"},
    ).json()["data"]
    assert generation["is_byok"] is True
    assert round(generation["total_cost"] * 1e9) == charged
    assert round(generation["upstream_inference_cost"] * 1e9) == catalog


def test_a_stream_with_the_own_key_reports_and_charges_the_fee(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, own_key: str
) -> None:
    before = account.balance()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    assert upstreams.primary.last.headers["authorization"] == f"Bearer {own_key}"
    usage = chunks[-1].usage
    assert usage is not None
    charged = fee(catalog_nanos(usage.prompt_tokens, usage.completion_tokens))
    assert round(extra(usage)["cost"] * 1e9) == charged
    assert extra(usage)["is_byok"] is True
    assert before - account.balance() == charged
    assert usage_row(account)["is_byok"] is True


def test_the_hold_is_the_fee_share_so_a_small_balance_still_gets_the_full_cap(
    gateway: str, upstreams: Upstreams, conn: psycopg.Connection
) -> None:
    from tests.e2e.conftest import new_account

    # Enough for 5 % of the full request, far from enough for the request at catalog price.
    full_hold = prompt_bound(HELLO) * INPUT_NANOS + 1_024 * OUTPUT_NANOS
    poor = new_account(credit_nanos=fee(full_hold) + 10)
    httpx.post(
        f"{gateway}/provider-keys",
        json={"provider": "openrouter", "key": OWN_KEY},
        headers={"authorization": f"Bearer {poor.secret}"},
    ).raise_for_status()
    client = openai.OpenAI(base_url=gateway, api_key=poor.secret, max_retries=0)
    client.chat.completions.create(
        model=MODEL,
        messages=HELLO,  # type: ignore[arg-type]
        extra_body={"provider": {"only": ["openrouter"]}},
    )
    assert upstreams.primary.last.json["max_tokens"] == 1_024
    row = usage_row(poor)
    assert row["held"] == fee(full_hold)
    assert 0 < row["cost"] <= row["held"]
    assert ledger.invariant_holds(conn, poor.account_id)


def test_a_refused_own_key_is_a_clear_error_not_a_fallback_to_our_key(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, own_key: str
) -> None:
    before = account.balance()
    upstreams.primary.enqueue(Behaviour(status=401))
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    error = raised.value.body
    assert isinstance(error, dict)
    assert error["code"] == "provider_key_rejected"
    assert "openrouter" in error["message"]
    assert own_key not in str(raised.value.response.text)
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert upstreams.secondary.requests == []  # never served with our key instead
    assert account.balance() == before


def test_a_failing_own_key_provider_falls_over_to_another_provider_at_full_price(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, own_key: str
) -> None:
    before = account.balance()
    upstreams.primary.enqueue(Behaviour(status=503))
    answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert upstreams.secondary.last.headers["authorization"] == "Bearer sk-fl-test"
    usage = answer.usage
    assert usage is not None
    catalog = catalog_nanos(usage.prompt_tokens, usage.completion_tokens)
    assert "is_byok" not in extra(usage)
    assert before - account.balance() == catalog
    assert usage_row(account)["is_byok"] is False


def test_after_the_key_is_deleted_our_key_serves_at_catalog_price(
    gateway: str, client: openai.OpenAI, account: Account, upstreams: Upstreams, own_key: str
) -> None:
    client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert upstreams.primary.last.headers["authorization"] == f"Bearer {own_key}"
    httpx.delete(
        f"{gateway}/provider-keys/openrouter",
        headers={"authorization": f"Bearer {account.secret}"},
    ).raise_for_status()
    before = account.balance()
    answer = client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    assert upstreams.primary.last.headers["authorization"] == f"Bearer {OUR_KEY}"
    usage = answer.usage
    assert usage is not None
    assert before - account.balance() == catalog_nanos(usage.prompt_tokens, usage.completion_tokens)
    assert usage_row(account)["is_byok"] is False


def test_a_provider_quoting_the_own_key_in_its_400_never_shows_it(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, own_key: str
) -> None:
    body = {"error": {"message": f"bad request for key {own_key}", "code": "bad"}}
    upstreams.primary.enqueue(Behaviour(status=400, error_body=body))
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=HELLO)  # type: ignore[arg-type]
    text = raised.value.response.text
    assert "bad request for key [redacted]" in text
    assert own_key not in text


def test_a_refused_own_key_on_a_stream_is_the_same_clear_error_before_any_byte(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, own_key: str
) -> None:
    before = account.balance()
    upstreams.primary.enqueue(Behaviour(status=403))
    with pytest.raises(openai.BadRequestError) as raised:
        list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))  # type: ignore[arg-type]
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == "provider_key_rejected"
    assert upstreams.secondary.requests == []
    assert account.balance() == before
