"""Portkey: https://api.portkey.ai/v1. Its key goes in `x-portkey-api-key`; the model id
names the operator's provider slug from Portkey's Model Catalog (`@openai/gpt-4o-mini`)."""

from __future__ import annotations

from gatewayz.chat.providers.base import Provider


class Portkey(Provider):
    name = "portkey"
    default_base_url = "https://api.portkey.ai/v1"

    def headers(self, api_key: str) -> dict[str, str]:
        return {"x-portkey-api-key": api_key}

    def cap_field(self, *, chat: bool) -> str:
        # Portkey passes OpenAI's fields to OpenAI as they are, and OpenAI's reasoning
        # models refuse `max_tokens`; Portkey maps this one for Anthropic and others.
        return "max_completion_tokens" if chat else "max_tokens"


PROVIDER = Portkey()
