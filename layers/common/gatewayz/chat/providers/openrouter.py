"""OpenRouter: https://openrouter.ai/api/v1, Bearer key."""

from __future__ import annotations

from typing import Any

from gatewayz.chat.providers.base import Provider


class OpenRouter(Provider):
    name = "openrouter"
    default_base_url = "https://openrouter.ai/api/v1"

    def headers(self, api_key: str) -> dict[str, str]:
        # OpenRouter attributes traffic to the app named here (its rankings, its logs).
        return {**super().headers(api_key), "x-title": "Gatewayz"}

    def body(self, body: dict[str, Any], provider_model_id: str, *, stream: bool) -> dict[str, Any]:
        # Ask for OpenRouter's usage accounting, so every answer carries its token counts.
        return {**super().body(body, provider_model_id, stream=stream), "usage": {"include": True}}


PROVIDER = OpenRouter()
