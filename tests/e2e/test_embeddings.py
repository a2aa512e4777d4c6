"""The `openai` SDK's `client.embeddings.create` against the running gateway, in front of
the fake providers' `/embeddings`: floats and base64, exact billing, failover, and the
refusals (scope, credits, the wrong kind of model) as the SDK's own exceptions."""

from __future__ import annotations

import base64
import struct
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

from gatewayz import db
from gatewayz.chat import catalog
from gatewayz.identity import keys
from tests.e2e.conftest import MODEL, new_account
from tests.fakes.openai_upstream import Behaviour, embedding

if TYPE_CHECKING:
    from tests.e2e.conftest import Account, Upstreams

EMBED = "test/embed"
NANOS_PER_TOKEN = 1_000  # $1 per million input tokens


@pytest.fixture(scope="module", autouse=True)
def embed_model(gateway: str) -> None:
    """`test/embed`: an embeddings model from `openrouter` (tried first) and `featherless`."""
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO models (id, name, context_length, output_modalities)
               VALUES (%s, 'Test: Embed', 512, '{embeddings}') ON CONFLICT (id) DO NOTHING""",
            (EMBED,),
        )
        for provider, priority in (("openrouter", 10), ("featherless", 20)):
            cur.execute(
                """INSERT INTO model_offers (model_id, provider, provider_model_id, priority,
                                             input_price, output_price)
                   VALUES (%s, %s, %s, %s, %s, 0) ON CONFLICT (model_id, provider) DO NOTHING""",
                (EMBED, provider, f"{provider}/embed", priority, Decimal(1)),
            )
    catalog.refresh()


def usage_rows(account: Account) -> list[tuple[object, ...]]:
    return db.execute(
        """SELECT endpoint, model, provider, input_tokens, output_tokens, cost_nanos, status
             FROM usage_records WHERE account_id = %s ORDER BY created_at""",
        (account.account_id,),
    ).fetchall()


def test_floats_come_back_as_the_provider_sent_them_and_cost_exactly_the_input(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    before = account.balance()
    inputs = ["hello there world", "one"]
    answer = client.embeddings.create(model=EMBED, input=inputs, encoding_format="float")
    assert [d.embedding for d in answer.data] == [embedding(t, i) for i, t in enumerate(inputs)]
    assert [d.index for d in answer.data] == [0, 1]
    assert answer.model == EMBED
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == 4
    cost = round(answer.usage.cost * 1e9)  # type: ignore[attr-defined]
    assert cost == 4 * NANOS_PER_TOKEN
    assert before - account.balance() == cost
    assert usage_rows(account) == [("embeddings", EMBED, "openrouter", 4, 0, cost, 200)]
    sent = upstreams.primary.last
    assert sent.path == "/v1/embeddings"
    assert sent.json["model"] == "openrouter/embed"
    assert sent.json["input"] == inputs
    assert "encoding_format" not in sent.json  # floats asked for: the gateway encodes


def test_the_sdks_default_base64_decodes_to_the_providers_floats(
    client: openai.OpenAI, account: Account, gateway: str
) -> None:
    # No encoding_format: the SDK asks for base64 and decodes it.
    answer = client.embeddings.create(model=EMBED, input="some text", dimensions=6)
    assert answer.data[0].embedding == embedding("some text", 0, 6)
    raw = httpx.post(
        f"{gateway}/embeddings",
        headers={"authorization": f"Bearer {account.secret}"},
        json={"model": EMBED, "input": [[5, 6, 7]], "encoding_format": "base64"},
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert packed == struct.pack("<4f", *embedding([5, 6, 7], 0))
    assert raw["usage"]["prompt_tokens"] == 3


def test_a_failing_provider_fails_over_and_the_request_is_charged_once(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(status=503))
    before = account.balance()
    answer = client.embeddings.create(model=EMBED, input="a b c", encoding_format="float")
    assert answer.provider == "featherless"  # type: ignore[attr-defined]
    assert before - account.balance() == 3 * NANOS_PER_TOKEN
    assert [r[2] for r in usage_rows(account)] == ["featherless"]
    assert upstreams.secondary.last.json["model"] == "featherless/embed"


def test_an_answer_without_usage_is_charged_at_the_estimate(
    client: openai.OpenAI, account: Account, upstreams: Upstreams
) -> None:
    upstreams.primary.enqueue(Behaviour(usage_in_answer=False))
    before = account.balance()
    answer = client.embeddings.create(model=EMBED, input="x" * 40, encoding_format="float")
    # The typical count: four bytes a token.
    assert answer.usage.prompt_tokens == 10
    assert before - account.balance() == 10 * NANOS_PER_TOKEN
    row = db.execute(
        "SELECT usage_estimated FROM usage_records WHERE account_id = %s", (account.account_id,)
    ).fetchone()
    assert row == (True,)


@pytest.mark.parametrize(
    "vector",
    ['["x"]', "[0.5, true]", "[0.5, NaN]", "[0.25, Infinity]", "[0.5, 1e39]", "[1e400, 0.5]",
     "[1, -1e39]", "[]", '{"0": 0.5}'],
)  # fmt: skip
def test_a_provider_answer_that_is_not_one_vector_per_input_is_not_passed_on(
    client: openai.OpenAI, account: Account, upstreams: Upstreams, vector: str
) -> None:
    bad = '{"object":"list","data":[{"index":0,"embedding":' + vector + "}]}"
    upstreams.primary.enqueue(Behaviour(raw_body=bad))
    upstreams.secondary.enqueue(Behaviour(raw_body=bad))
    before = account.balance()
    with pytest.raises(openai.InternalServerError) as raised:
        client.embeddings.create(model=EMBED, input="a", encoding_format="float")
    assert raised.value.status_code == 502
    assert account.balance() == before


def test_a_key_without_the_embeddings_scope_gets_a_403(gateway: str) -> None:
    narrowed = new_account(scopes=("chat",))
    client = openai.OpenAI(base_url=gateway, api_key=narrowed.secret, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.embeddings.create(model=EMBED, input="a")
    assert raised.value.code == "scope_denied"
    assert "embeddings" in keys.DEFAULT_SCOPES  # a new key holds it unless narrowed


def test_an_unfunded_account_gets_a_402_and_keeps_its_zero_balance(gateway: str) -> None:
    broke = new_account(credit_nanos=0)
    client = openai.OpenAI(base_url=gateway, api_key=broke.secret, max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.embeddings.create(model=EMBED, input="a b")
    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_credits"  # type: ignore[attr-defined]
    assert "max_tokens" not in raised.value.message
    assert broke.balance() == 0
    assert usage_rows(broke) == []


def test_models_of_the_wrong_kind_are_refused_each_way(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model=MODEL, input="a")
    assert raised.value.param == "model"  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=EMBED, messages=[{"role": "user", "content": "a"}])
    assert refused.value.param == "model"  # type: ignore[attr-defined]


def test_an_input_longer_than_the_models_context_is_a_400(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model=EMBED, input=["short", "word " * 1_000])
    assert raised.value.code == "context_length_exceeded"
    assert upstreams.primary.requests == []


def test_the_embeddings_model_is_listed_with_its_modality(client: openai.OpenAI) -> None:
    listed = {m.id: m for m in client.models.list()}
    assert listed[EMBED].architecture["output_modalities"] == ["embeddings"]  # type: ignore[attr-defined]
