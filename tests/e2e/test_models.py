"""`GET /v1/models` and `/v1/models/{id}`: public, cacheable, OpenRouter-like metadata of
the models this deploy can serve."""

from __future__ import annotations

import httpx
import openai
import pytest


def test_the_list_is_public_and_shows_only_servable_models_with_prices(gateway: str) -> None:
    response = httpx.get(f"{gateway}/models")
    assert response.status_code == 200
    assert "max-age" in response.headers["cache-control"]
    models = {m["id"]: m for m in response.json()["data"]}
    test = models["test/echo"]
    assert test["pricing"] == {"prompt": "0.000001", "completion": "0.000002"}
    assert [p["name"] for p in test["providers"]] == ["openrouter", "featherless"]
    assert test["context_length"] == 8192
    assert test["object"] == "model"
    # Only offers of configured providers count: Portkey has no key in these tests.
    mini = models["openai/gpt-4o-mini"]
    assert [p["name"] for p in mini["providers"]] == ["openrouter"]
    assert mini["pricing"]["prompt"] == "0.00000015"
    assert mini["pricing"]["input_cache_read"] == "0.000000075"
    assert mini["architecture"]["input_modalities"] == ["text", "image"]
    assert "tools" in mini["supported_parameters"]
    # No Chutes or Portkey key: a model only they serve is not listed, nor the offline mock.
    assert "mock/echo" not in models
    assert all(
        p["name"] in {"openrouter", "featherless"} for m in models.values() for p in m["providers"]
    )


def test_the_sdk_lists_and_retrieves_ids_with_slashes(gateway: str) -> None:
    client = openai.OpenAI(base_url=gateway, api_key="unused-for-public-routes", max_retries=0)
    assert "test/echo" in {m.id for m in client.models.list()}
    model = client.models.retrieve("openai/gpt-4o-mini")
    assert model.id == "openai/gpt-4o-mini"
    assert model.owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nobody/nothing")
    assert caught.value.code == "model_not_found"
