"""Chutes: https://llm.chutes.ai/v1, Bearer key, Hugging Face model ids."""

from __future__ import annotations

from gatewayz.chat.providers.base import Provider


class Chutes(Provider):
    name = "chutes"
    default_base_url = "https://llm.chutes.ai/v1"


PROVIDER = Chutes()
