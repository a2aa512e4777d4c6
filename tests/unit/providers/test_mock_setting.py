"""`GATEWAYZ_MOCK`: `on` keeps the offline mock beside the real providers; `off` (the
default) offers it only when no provider has a key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gatewayz.chat import providers
from gatewayz.config import Settings


def test_off_is_the_default_and_the_mock_serves_only_without_keys() -> None:
    assert Settings().gatewayz_mock == "off"
    assert list(providers.available(Settings())) == ["mock"]
    assert list(providers.available(Settings(openrouter_api_key="k"))) == ["openrouter"]


def test_on_keeps_the_mock_beside_real_providers_and_own_keys() -> None:
    settings = Settings(openrouter_api_key="k", gatewayz_mock="on")
    assert sorted(providers.available(settings)) == ["mock", "openrouter"]
    assert sorted(providers.available(settings, {"chutes": "theirs"})) == [
        "chutes",
        "mock",
        "openrouter",
    ]
    assert list(providers.available(Settings(gatewayz_mock="on"))) == ["mock"]


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAYZ_MOCK", "on")
    assert Settings().gatewayz_mock == "on"
    monkeypatch.setenv("GATEWAYZ_MOCK", "sometimes")
    with pytest.raises(ValidationError):
        Settings()
