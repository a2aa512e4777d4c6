"""`POST /v1/embeddings` with no provider key: the offline `mock/embed` model through the
chat function's real handler and API Gateway events, and the `openai` SDK through the
local gateway (`gatewayz dev`'s router)."""

from __future__ import annotations

import base64
import json
import math
import struct
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from gatewayz import db
from gatewayz.chat.providers import mock_embeddings
from gatewayz.dev import local, samtemplate
from tests.factories import new_key, new_owner
from tests.functions.events import event, invoke, json_body, sent_with_key
from tests.pg import ROOT

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.usefixtures("database_url")
NANOS_PER_TOKEN = 20  # mock/embed: $0.02 per million input tokens


def embed(secret: str, **body: Any) -> dict[str, Any]:
    """POST `body` to /v1/embeddings through the chat handler with the sample event."""
    lambda_event = event("chat", "embeddings", body=json.dumps(body))
    return invoke("chat", sent_with_key(lambda_event, secret))


def balance(account_id: str) -> int:
    row = db.execute("SELECT balance_nanos FROM accounts WHERE id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_the_sample_event_with_a_real_key_gets_a_unit_vector_and_is_billed_per_word() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    result = embed(key.secret, model="mock/embed", input="hello world", encoding_format="float")
    assert result["statusCode"] == 200, result["body"]
    body = json_body(result)
    assert body["object"] == "list"
    assert body["model"] == "mock/embed"
    assert body["provider"] == "mock"
    [item] = body["data"]
    assert item["object"] == "embedding"
    assert item["index"] == 0
    vector = item["embedding"]
    assert len(vector) == mock_embeddings.DEFAULT_DIMENSIONS
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-9)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] == 2
    assert round(body["usage"]["cost"] * 1e9) == 2 * NANOS_PER_TOKEN
    assert before - balance(owner.account_id) == 2 * NANOS_PER_TOKEN
    row = db.execute(
        "SELECT endpoint, model, input_tokens, output_tokens, cost_nanos FROM usage_records"
        " WHERE account_id = %s",
        (owner.account_id,),
    ).fetchall()
    assert row == [("embeddings", "mock/embed", 2, 0, 2 * NANOS_PER_TOKEN)]


def test_vectors_are_deterministic_and_dimensions_give_a_renormalised_prefix() -> None:
    key = new_key(new_owner(plan_id="trial"))
    first = json_body(embed(key.secret, model="mock/embed", input=["a b", "c"]))["data"]
    again = json_body(embed(key.secret, model="mock/embed", input=["c"]))["data"]
    assert [d["index"] for d in first] == [0, 1]
    # The SDK's default is base64; without `encoding_format` the answer is floats.
    assert first[1]["embedding"] == again[0]["embedding"]
    assert first[0]["embedding"] != first[1]["embedding"]
    short = json_body(embed(key.secret, model="mock/embed", input="a b", dimensions=8))
    vector = short["data"][0]["embedding"]
    assert len(vector) == 8
    full = first[0]["embedding"][:8]
    scale = math.sqrt(sum(x * x for x in full))
    assert vector == pytest.approx([x / scale for x in full])


def test_base64_is_little_endian_float32_of_the_float_answer() -> None:
    key = new_key(new_owner(plan_id="trial"))
    floats = json_body(embed(key.secret, model="mock/embed", input=[1, 2, 3], dimensions=16))
    packed = json_body(
        embed(
            key.secret, model="mock/embed", input=[1, 2, 3], dimensions=16, encoding_format="base64"
        )
    )
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert len(raw) == 16 * 4
    decoded = struct.unpack("<16f", raw)
    expected = [
        struct.unpack("<f", struct.pack("<f", x))[0] for x in floats["data"][0]["embedding"]
    ]
    assert list(decoded) == expected
    assert packed["usage"]["prompt_tokens"] == 3  # a token-id input counts its ids


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "mock/embed", "input": ""}, "input"),
        ({"model": "mock/embed", "input": []}, "input"),
        ({"model": "mock/embed", "input": ["ok", ""]}, "input[1]"),
        ({"model": "mock/embed", "input": ["x"] * 2049}, "input"),
        ({"model": "mock/embed", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "mock/embed", "input": "x", "dimensions": "8"}, "dimensions"),
        ({"model": "mock/embed", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "mock/embed", "input": [1, "a"]}, "input[0]"),
        ({"input": "x"}, "model"),
        ({"model": "mock/echo", "input": "x"}, "model"),
        ({"model": "mock/embed", "input": "word " * 40_000}, "input"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_param_and_costs_nothing(
    body: dict[str, Any], param: str
) -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    result = embed(key.secret, **body)
    assert result["statusCode"] == 400, result["body"]
    error = json_body(result)["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    assert balance(owner.account_id) == before


def test_an_input_longer_than_the_context_is_context_length_exceeded() -> None:
    key = new_key(new_owner(plan_id="trial"))
    result = embed(key.secret, model="mock/embed", input=["ok", "word " * 40_000])
    assert result["statusCode"] == 400
    assert json_body(result)["error"]["code"] == "context_length_exceeded"


def test_more_dimensions_than_the_mock_makes_is_a_400_and_costs_nothing() -> None:
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    before = balance(owner.account_id)
    too_many = mock_embeddings.MAX_DIMENSIONS + 1
    result = embed(key.secret, model="mock/embed", input="x", dimensions=too_many)
    assert result["statusCode"] == 400
    assert "dimensions" in json_body(result)["error"]["message"]
    assert balance(owner.account_id) == before


def test_the_chat_routes_refuse_an_embeddings_model() -> None:
    key = new_key(new_owner(plan_id="trial"))
    lambda_event = event(
        "chat",
        "chat-completions",
        body=json.dumps({"model": "mock/embed", "messages": [{"role": "user", "content": "hi"}]}),
    )
    lambda_event["headers"]["Authorization"] = f"Bearer {key.secret}"
    lambda_event["multiValueHeaders"]["Authorization"] = [f"Bearer {key.secret}"]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    result = invoke("chat", lambda_event)
    assert result["statusCode"] == 400
    error = json_body(result)["error"]
    assert error["param"] == "model"
    assert "/v1/embeddings" in error["message"]


def test_the_mock_embeddings_model_is_listed_with_its_output_modality() -> None:
    result = invoke("chat", event("chat", path="/v1/models", resource="/v1/models"))
    listed = {m["id"]: m for m in json_body(result)["data"]}
    model = listed["mock/embed"]
    assert model["architecture"]["output_modalities"] == ["embeddings"]
    assert model["pricing"]["prompt"] == "0.00000002"
    assert "dimensions" in model["supported_parameters"]


@pytest.fixture(scope="module")
def gateway() -> local.LocalGateway:
    template = samtemplate.load(ROOT / "template.yaml")
    return local.LocalGateway(template, local.load_functions(ROOT, template))


@pytest.fixture
async def sdk(gateway: local.LocalGateway) -> AsyncIterator[tuple[openai.AsyncOpenAI, str]]:
    """The `openai` SDK against the local gateway, and the account its key spends from."""
    owner = new_owner(plan_id="trial")
    key = new_key(owner)
    transport = httpx.ASGITransport(app=gateway, client=("198.51.100.4", 5000))
    async with httpx.AsyncClient(transport=transport) as http:
        client = openai.AsyncOpenAI(
            base_url="http://gw.local/v1", api_key=key.secret, http_client=http, max_retries=0
        )
        yield client, owner.account_id


async def test_the_sdk_decodes_its_default_base64_to_the_mocks_vector(
    sdk: tuple[openai.AsyncOpenAI, str],
) -> None:
    client, account_id = sdk
    before = balance(account_id)
    # No encoding_format: the SDK asks for base64 and decodes it to floats itself.
    answer = await client.embeddings.create(model="mock/embed", input="the same words")
    as_float32 = [
        struct.unpack("<f", struct.pack("<f", x))[0]
        for x in mock_embeddings.vector("the same words")
    ]
    assert answer.data[0].embedding == as_float32
    assert answer.usage.prompt_tokens == 3
    floats = await client.embeddings.create(
        model="mock/embed", input=["the same words"], encoding_format="float", dimensions=32
    )
    assert len(floats.data[0].embedding) == 32
    assert before - balance(account_id) == 2 * 3 * NANOS_PER_TOKEN


async def test_a_key_with_only_the_embeddings_scope_reads_what_its_request_cost(
    gateway: local.LocalGateway,
) -> None:
    key = new_key(new_owner(plan_id="trial"), scopes=("embeddings",))
    transport = httpx.ASGITransport(app=gateway, client=("198.51.100.4", 5000))
    auth = {"authorization": f"Bearer {key.secret}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.local") as http:
        made = await http.post(
            "/v1/embeddings", headers=auth, json={"model": "mock/embed", "input": "a b c"}
        )
        assert made.status_code == 200
        request_id = made.headers["x-request-id"]
        found = await http.get("/v1/generation", headers=auth, params={"id": request_id})
        chat = await http.post(
            "/v1/chat/completions",
            headers=auth,
            json={"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert found.status_code == 200, found.text
    data = found.json()["data"]
    assert (data["endpoint"], data["tokens"]["prompt"]) == ("embeddings", 3)
    assert data["cost_nanos"] == 3 * NANOS_PER_TOKEN
    assert chat.status_code == 403
    assert chat.json()["error"]["code"] == "scope_denied"
