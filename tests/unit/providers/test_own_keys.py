"""The registry with an account's own provider keys (bring-your-own-key): such a provider
is called with the account's key, never with ours."""

from __future__ import annotations

from gatewayz.chat import providers
from gatewayz.config import Settings


def test_an_own_key_replaces_ours_for_its_provider_only() -> None:
    settings = Settings(openrouter_api_key="ours-or", featherless_api_key="ours-fl")
    ready = providers.available(settings, {"openrouter": "theirs-or"})
    assert (ready["openrouter"].api_key, ready["openrouter"].own_key) == ("theirs-or", True)
    assert (ready["featherless"].api_key, ready["featherless"].own_key) == ("ours-fl", False)
    assert ready["openrouter"].base_url == "https://openrouter.ai/api/v1"
    assert "portkey" not in ready


def test_an_own_key_makes_its_provider_available_and_the_offline_mock_steps_aside() -> None:
    settings = Settings()
    assert list(providers.available(settings)) == ["mock"]
    ready = providers.available(settings, {"chutes": "theirs-ch"})
    assert list(ready) == ["chutes"]
    assert ready["chutes"].own_key


def test_without_own_keys_nothing_changes() -> None:
    settings = Settings(openrouter_api_key="ours-or")
    assert providers.available(settings, {}) == providers.available(settings)
    assert not providers.available(settings)["openrouter"].own_key


def test_the_answer_without_own_keys_is_worked_out_once_per_settings() -> None:
    # Kept for the settings it came from: an account's own keys never leak into it, and
    # new settings (another key) get an answer of their own.
    settings = Settings(openrouter_api_key="ours-or")
    first = providers.available(settings)
    assert providers.available(settings) is first
    assert providers.available(settings, {"openrouter": "theirs-or"})["openrouter"].own_key
    assert providers.available(settings) is first
    assert first["openrouter"].api_key == "ours-or"
    changed = providers.available(Settings(openrouter_api_key="rotated-or"))
    assert changed["openrouter"].api_key == "rotated-or"
