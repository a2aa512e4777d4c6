"""`GET /v1/models` with OpenRouter's filters (`supported_parameters`,
`input_modalities`, `output_modalities`), through the chat function's handler and API
Gateway events, with Featherless configured (the seeded catalog plus two models here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gatewayz import db
from gatewayz.chat import catalog
from tests.conftest import reset_caches
from tests.functions.events import event, invoke, json_body

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("database_url")

VISION, PAINTER = "t-filters/vision", "t-filters/painter"


@pytest.fixture
def featherless(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Featherless configured, serving the seeded models and two of this test's."""
    monkeypatch.setenv("FEATHERLESS_API_KEY", "featherless-test-key")
    reset_caches()
    rows = [
        (VISION, ["text", "image"], ["text"], ["tools", "response_format", "seed"]),
        (PAINTER, ["text"], ["image"], ["seed"]),
    ]
    with db.transaction() as cur:
        for model_id, inputs, outputs, params in rows:
            cur.execute(
                """INSERT INTO models (id, name, context_length, input_modalities,
                                       output_modalities, supported_parameters)
                   VALUES (%s, %s, 8192, %s, %s, %s)""",
                (model_id, model_id, inputs, outputs, params),
            )
            cur.execute(
                """INSERT INTO model_offers (model_id, provider, provider_model_id,
                                             input_price, output_price)
                   VALUES (%s, 'featherless', %s, 1, 2)""",
                (model_id, model_id),
            )
    catalog.refresh()
    yield
    with db.transaction() as cur:
        cur.execute("DELETE FROM models WHERE id = ANY(%s)", ([VISION, PAINTER],))
    catalog.refresh()
    monkeypatch.undo()
    reset_caches()


def models(**query: str) -> list[dict[str, Any]]:
    lambda_event = event(
        "chat",
        path="/v1/models",
        queryStringParameters=query or None,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} or None,
    )
    result = invoke("chat", lambda_event)
    assert result["statusCode"] == 200, result["body"]
    data: list[dict[str, Any]] = json_body(result)["data"]
    return data


def ids(listed: list[dict[str, Any]]) -> set[str]:
    return {m["id"] for m in listed}


@pytest.mark.usefixtures("featherless")
def test_supported_parameters_keeps_models_supporting_every_one() -> None:
    everything = models()
    wanted = {"tools", "response_format"}
    expected = {m["id"] for m in everything if wanted <= set(m["supported_parameters"])}
    assert VISION in expected
    assert expected < ids(everything)  # the filter leaves some out
    assert ids(models(supported_parameters="tools,response_format")) == expected
    assert ids(models(supported_parameters=" tools , response_format,")) == expected
    assert models(supported_parameters="tools,no_such_parameter") == []


@pytest.mark.usefixtures("featherless")
def test_input_modalities_keeps_models_accepting_every_one() -> None:
    everything = models()
    expected = {m["id"] for m in everything if "image" in m["architecture"]["input_modalities"]}
    assert ids(models(input_modalities="image")) == expected
    assert VISION in expected
    assert PAINTER not in expected
    assert ids(models(input_modalities="text,image")) == expected
    assert models(input_modalities="image,audio") == []


@pytest.mark.usefixtures("featherless")
def test_output_modalities_keeps_models_producing_any_one() -> None:
    everything = models()
    assert ids(models(output_modalities="image")) == {PAINTER}
    texts = {m["id"] for m in everything if "text" in m["architecture"]["output_modalities"]}
    assert PAINTER not in texts
    assert ids(models(output_modalities="text")) == texts
    either = {
        m["id"]
        for m in everything
        if {"text", "image"} & set(m["architecture"]["output_modalities"])
    }
    assert ids(models(output_modalities="text,image")) == either == texts | {PAINTER}
    assert ids(models(output_modalities="all")) == ids(everything)


@pytest.mark.usefixtures("featherless")
def test_filters_combine() -> None:
    assert ids(models(supported_parameters="seed", output_modalities="image")) == {PAINTER}
    assert ids(models(supported_parameters="tools", input_modalities="image")) == {VISION}
