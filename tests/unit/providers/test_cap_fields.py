"""Each provider is sent the output cap in the field it reads."""

from __future__ import annotations

import pytest

from gatewayz.chat.providers import REGISTRY
from gatewayz.chat.providers.mock import PROVIDER as MOCK


@pytest.mark.parametrize(
    ("name", "chat_field"),
    [
        ("openrouter", "max_tokens"),
        ("featherless", "max_tokens"),
        ("chutes", "max_tokens"),
        # OpenAI's reasoning models behind Portkey refuse `max_tokens`.
        ("portkey", "max_completion_tokens"),
    ],
)
def test_the_cap_field_of_each_provider(name: str, chat_field: str) -> None:
    provider = REGISTRY[name]
    assert provider.cap_field(chat=True) == chat_field
    # Legacy completions know only `max_tokens`.
    assert provider.cap_field(chat=False) == "max_tokens"


def test_the_mock_reads_the_common_field() -> None:
    assert MOCK.cap_field(chat=True) == "max_tokens"
