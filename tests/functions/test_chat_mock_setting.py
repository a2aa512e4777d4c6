"""The chat function with a provider key set: `GATEWAYZ_MOCK=on` keeps `mock/echo` listed
and answering beside the provider's models; `off` leaves only the provider's."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import pytest

from tests.conftest import reset_caches
from tests.factories import add_echo_model, new_key, new_owner
from tests.functions.events import event, invoke, json_body

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def provider_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A key for a provider never called here: the mock's answers need no network.
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-unused")
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://openrouter.invalid/api/v1")
    add_echo_model()
    yield
    monkeypatch.undo()
    reset_caches()


def _listed() -> list[str]:
    result = invoke("chat", event("chat", path="/v1/models", resource="/v1/models"))
    assert result["statusCode"] == 200
    return [m["id"] for m in json_body(result)["data"]]


def _ask_the_mock() -> dict[str, object]:
    key = new_key(new_owner(plan_id="trial"))
    lambda_event = event("chat", "chat-completions")
    lambda_event["headers"]["Authorization"] = f"Bearer {key.secret}"
    lambda_event["multiValueHeaders"]["Authorization"] = [f"Bearer {key.secret}"]
    lambda_event["requestContext"]["requestId"] = str(uuid.uuid4())
    result = invoke("chat", lambda_event)
    return {"status": result["statusCode"], **json.loads(result["body"])}


@pytest.mark.usefixtures("provider_key")
def test_on_keeps_the_mock_beside_a_real_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAYZ_MOCK", "on")
    reset_caches()
    assert {"mock/echo", "test/echo"} <= set(_listed())
    answer = _ask_the_mock()
    assert answer["status"] == 200
    assert answer["provider"] == "mock"


@pytest.mark.usefixtures("provider_key")
@pytest.mark.parametrize("setting", ["off", None])
def test_off_or_unset_serves_only_the_real_provider(
    monkeypatch: pytest.MonkeyPatch, setting: str | None
) -> None:
    if setting is not None:
        monkeypatch.setenv("GATEWAYZ_MOCK", setting)
    reset_caches()
    listed = _listed()
    assert "test/echo" in listed
    assert "mock/echo" not in listed
    answer = _ask_the_mock()
    assert answer["status"] == 404
    assert answer["error"]["code"] == "model_not_found"  # type: ignore[index]
